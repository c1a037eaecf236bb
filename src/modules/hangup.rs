//! `hangup`: hangs the call up with a cause and stops the flow (Kazoo: queued hangup +
//! `hard_stop`, ignoring any callflow that branched here).
//!
//! ESL: `execute hangup <cause>` (default NORMAL_CLEARING). Children: none.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `hangup` module.
pub struct Hangup;

/// `hangup` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Q.850 cause name sent to FreeSWITCH's `hangup` app.
    #[serde(default = "default_cause")]
    pub cause: String,
}

fn default_cause() -> String {
    "NORMAL_CLEARING".into()
}

impl CallflowModule for Hangup {
    const NAME: &'static str = "hangup";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Hang the call up",
            "properties": {
                "cause": {
                    "type": "string",
                    "description": "Q.850 hangup cause name (FreeSWITCH spelling)",
                    "pattern": "^[A-Z][A-Z0-9_]{1,63}$",
                    "default": "NORMAL_CLEARING"
                }
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        match call.execute("hangup", &data.cause).await {
            // The hangup's own CHANNEL_HANGUP arrives before its EXECUTE_COMPLETE: success.
            Ok(_) | Err(CallEnded::HungUp(_)) => Ok(Next::HardStop),
            Err(other) => Err(other),
        }
    }
}

//! `user`: rings every enabled device a user owns (their desk phone and softphone together, or
//! one after the other with `strategy: single`).
//!
//! ESL: see [`super::bridge`] — `execute bridge <legs>` with `,` (simultaneous) or `|` (single).
//! Children: answered -> stop; failure -> cause child, then `sip:<code>`, then `_`; no devices
//! (or only the caller's own) -> `_`.

use super::bridge::{self, BridgeResult, EndpointOptions, Strategy};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `user` module.
pub struct User;

/// `user` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// User document id.
    pub id: String,
    /// Ring time in seconds.
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// Seconds before ringing.
    #[serde(default)]
    pub delay: u32,
    /// `simultaneous` or `single`.
    #[serde(default = "simultaneous")]
    pub strategy: String,
    /// Ring even the caller's own device.
    #[serde(default)]
    pub can_call_self: bool,
    /// Media (or tone) played while ringing.
    #[serde(default)]
    pub ringback: Option<String>,
}

fn twenty() -> u32 {
    20
}
fn simultaneous() -> String {
    "simultaneous".into()
}

impl CallflowModule for User {
    const NAME: &'static str = "user";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Ring a user's devices",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                "delay": {"type": "integer", "minimum": 0, "maximum": 300, "default": 0},
                "strategy": {"type": "string", "enum": ["simultaneous", "single"], "default": "simultaneous"},
                "can_call_self": {"type": "boolean", "default": false},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let options = EndpointOptions {
            can_call_self: data.can_call_self,
            ignore_forward: false,
            delay: data.delay,
            timeout: Some(data.timeout).filter(|t| *t > 0),
        };
        let legs = bridge::user_legs(call, &data.id, &options);
        if legs.is_empty() {
            tracing::info!(user = %data.id, "user has no device to ring; continuing");
            return Ok(Next::default_child());
        }
        let strategy = Strategy::parse(&data.strategy);
        let timeout = Some(data.timeout + data.delay).filter(|_| data.timeout > 0);
        match bridge::bridge(call, &legs, strategy, timeout, data.ringback.as_deref()).await? {
            BridgeResult::Answered => Ok(Next::Stop),
            BridgeResult::Failed { cause, sip_code } => {
                Ok(bridge::failure_next(&cause, sip_code.as_deref()))
            }
        }
    }
}

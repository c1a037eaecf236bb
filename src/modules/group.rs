//! `group`: rings the members of a `groups` document (its `endpoints` map of devices and users).
//!
//! ESL: see [`super::bridge`] — one `execute bridge <legs>`. Children: answered -> stop;
//! failure -> cause child, then `sip:<code>`, then `_`; empty or unknown group -> `_`.

use super::bridge::{self, BridgeResult, EndpointOptions, Strategy};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `group` module.
pub struct Group;

/// `group` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Group document id.
    pub id: String,
    /// Ring time in seconds.
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// `simultaneous` or `single`.
    #[serde(default = "simultaneous")]
    pub strategy: String,
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

impl CallflowModule for Group {
    const NAME: &'static str = "group";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Ring the members of a group",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                "strategy": {"type": "string", "enum": ["simultaneous", "single"], "default": "simultaneous"},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let options = EndpointOptions {
            can_call_self: false,
            ignore_forward: true,
            delay: 0,
            timeout: Some(data.timeout).filter(|t| *t > 0),
        };
        let legs = bridge::group_legs(call, &data.id, &options);
        if legs.is_empty() {
            return Ok(Next::default_child());
        }
        let strategy = Strategy::parse(&data.strategy);
        let timeout = Some(data.timeout).filter(|t| *t > 0);
        match bridge::bridge(call, &legs, strategy, timeout, data.ringback.as_deref()).await? {
            BridgeResult::Answered => Ok(Next::Stop),
            BridgeResult::Failed { cause, sip_code } => {
                Ok(bridge::failure_next(&cause, sip_code.as_deref()))
            }
        }
    }
}

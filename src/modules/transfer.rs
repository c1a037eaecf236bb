//! `transfer`: blind-transfers the call to an extension of a FreeSWITCH dialplan context, handing
//! it back to the switch's own routing (e.g. to reach a legacy IVR or a queue).
//!
//! ESL: `execute transfer <target> <dialplan> <context>`. The call leaves callflowd's control:
//! the executor ends without hanging up and the socket is closed. Target: `target`, else the
//! route's capture group. No target -> `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `transfer` module.
pub struct Transfer;

/// `transfer` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Extension to transfer to.
    #[serde(default)]
    pub target: Option<String>,
    /// Dialplan context.
    #[serde(default = "default_context")]
    pub context: String,
    /// Dialplan type (`XML`, `inline`...).
    #[serde(default = "xml")]
    pub dialplan: String,
    /// Only blind transfers exist in a callflow (attended ones are metaflows).
    #[serde(default = "blind")]
    pub transfer_type: String,
}

fn default_context() -> String {
    "default".into()
}
fn xml() -> String {
    "XML".into()
}
fn blind() -> String {
    "blind".into()
}

impl CallflowModule for Transfer {
    const NAME: &'static str = "transfer";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Blind transfer to an extension in a FreeSWITCH dialplan context",
            "properties": {
                "target": {"type": "string", "pattern": "^[A-Za-z0-9_+*#.@\\-]{1,64}$", "description": "Extension (default: the capture group)"},
                "context": {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,64}$", "default": "default"},
                "dialplan": {"type": "string", "enum": ["XML", "inline", "enum", "LUA"], "default": "XML"},
                "transfer_type": {"type": "string", "enum": ["blind"], "default": "blind"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let target = data.target.clone().or_else(|| {
            call.kvs
                .get("capture_group")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            tracing::warn!("transfer has no target; continuing");
            return Ok(Next::default_child());
        };
        let arg = format!("{target} {} {}", data.dialplan, data.context);
        call.execute("transfer", &arg).await?;
        Ok(Next::Transfer)
    }
}

//! `prepend_cid`: adds a prefix to the caller ID (e.g. "Sales:" before the name) so the person
//! answering knows which line the call came in on.
//!
//! ESL: `execute set effective_caller_id_name=<prefix><name>` and `..._number=<prefix><number>`
//! (`reset` restores the original caller ID). `apply_to: current` stacks on an earlier prefix,
//! `original` replaces it. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `prepend_cid` module.
pub struct PrependCid;

/// `prepend_cid` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `prepend` or `reset`.
    #[serde(default = "prepend")]
    pub action: String,
    /// Prefix for the name.
    #[serde(default)]
    pub caller_id_name_prefix: String,
    /// Prefix for the number.
    #[serde(default)]
    pub caller_id_number_prefix: String,
    /// `current` (stack on earlier prefixes) or `original`.
    #[serde(default = "current")]
    pub apply_to: String,
}

fn prepend() -> String {
    "prepend".into()
}
fn current() -> String {
    "current".into()
}

impl CallflowModule for PrependCid {
    const NAME: &'static str = "prepend_cid";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Prepend a prefix to the caller ID name/number",
            "properties": {
                "action": {"type": "string", "enum": ["prepend", "reset"], "default": "prepend"},
                "caller_id_name_prefix": {"type": "string", "maxLength": 64, "default": ""},
                "caller_id_number_prefix": {"type": "string", "maxLength": 32, "pattern": "^[^\\s]*$", "default": ""},
                "apply_to": {"type": "string", "enum": ["current", "original"], "default": "current"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let original_name = call
            .channel_header("Caller-Caller-ID-Name")
            .unwrap_or_default()
            .to_string();
        let original_number = call
            .channel_header("Caller-Caller-ID-Number")
            .unwrap_or_default()
            .to_string();
        let (name_prefix, number_prefix) = if data.action == "reset" {
            (String::new(), String::new())
        } else {
            let stacked = |key: &str| {
                call.kvs
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            if data.apply_to == "current" {
                (
                    format!(
                        "{}{}",
                        data.caller_id_name_prefix,
                        stacked("prepend_cid_name")
                    ),
                    format!(
                        "{}{}",
                        data.caller_id_number_prefix,
                        stacked("prepend_cid_number")
                    ),
                )
            } else {
                (
                    data.caller_id_name_prefix.clone(),
                    data.caller_id_number_prefix.clone(),
                )
            }
        };
        let name = format!("{name_prefix}{original_name}").replace(['\r', '\n'], " ");
        let number = format!("{number_prefix}{original_number}").replace(['\r', '\n'], "");
        call.set_var("effective_caller_id_name", &name).await?;
        call.set_var("effective_caller_id_number", &number).await?;
        call.kvs
            .insert("prepend_cid_name".into(), Value::String(name_prefix));
        call.kvs
            .insert("prepend_cid_number".into(), Value::String(number_prefix));
        Ok(Next::default_child())
    }
}

//! `set_cid`: rewrites the caller ID presented on calls this flow places (bridges, offnet).
//!
//! ESL: `execute set effective_caller_id_name=<name>` and `execute set
//! effective_caller_id_number=<number>` (`execute unset ...` for an empty value, which clears the
//! rewrite, as in Kazoo). Kept in the call's store as `rewrite_cid_name/number` too.
//! Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `set_cid` module.
pub struct SetCid;

/// `set_cid` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// New caller-ID name ("" clears).
    #[serde(default)]
    pub caller_id_name: String,
    /// New caller-ID number ("" clears).
    #[serde(default)]
    pub caller_id_number: String,
}

/// Sets (or, when empty, unsets) the effective caller ID name and number on the channel.
pub async fn apply(call: &mut Call, name: &str, number: &str) -> Result<(), CallEnded> {
    for (var, value, key) in [
        ("effective_caller_id_name", name, "rewrite_cid_name"),
        ("effective_caller_id_number", number, "rewrite_cid_number"),
    ] {
        let value = value.replace(['\r', '\n'], " ");
        if value.is_empty() {
            call.execute("unset", var).await?;
            call.kvs.remove(key);
        } else {
            call.set_var(var, &value).await?;
            call.kvs.insert(key.into(), Value::String(value));
        }
    }
    Ok(())
}

impl CallflowModule for SetCid {
    const NAME: &'static str = "set_cid";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Rewrite the caller ID used on outgoing legs",
            "properties": {
                "caller_id_name": {"type": "string", "maxLength": 128, "default": ""},
                "caller_id_number": {"type": "string", "maxLength": 64, "pattern": "^[^\\s]*$", "default": ""}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        apply(call, &data.caller_id_name, &data.caller_id_number).await?;
        Ok(Next::default_child())
    }
}

//! `branch_variable`: picks the child keyed by a variable's value (e.g. a value set by
//! `set_variables`, digits from `collect_dtmf`, or a field of the account/device/user document).
//!
//! ESL: none (values are read from the call's store and its latest channel-variable snapshot).
//! Scopes: `custom_channel_vars` (custom variables, DTMF collections, then channel variables),
//! `account`, `device`, `user` (a dotted path into that document), `merged` (all, in that order).
//! Children: the value as a string (booleans `true`/`false`, numbers as written), else `_`.

use super::collect_dtmf::collected;
use super::set_variables::{CAV_KEY, value_text};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `branch_variable` module.
pub struct BranchVariable;

/// `branch_variable` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Variable name (a dotted path for document scopes).
    pub variable: String,
    /// Where to look.
    #[serde(default = "ccv")]
    pub scope: String,
}

fn ccv() -> String {
    "custom_channel_vars".into()
}

fn dotted<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn custom_value(call: &Call, variable: &str) -> Option<String> {
    if let Some(v) = call.kvs.get(CAV_KEY).and_then(|cavs| cavs.get(variable)) {
        return Some(value_text(v));
    }
    if let Some(digits) = collected(call, variable) {
        return Some(digits.to_string());
    }
    call.var(variable).map(str::to_string)
}

fn document_value(call: &Call, collection: &str, id_key: &str, variable: &str) -> Option<String> {
    let id = call.kvs.get(id_key)?.as_str()?;
    let doc = call
        .ctx
        .store
        .document(&call.account_id, collection, id)
        .ok()
        .flatten()?;
    dotted(&doc, variable).map(value_text)
}

fn account_value(call: &Call, variable: &str) -> Option<String> {
    let account = call.ctx.store.account(&call.account_id).ok().flatten()?;
    let doc = serde_json::to_value(account).ok()?;
    dotted(&doc, variable).map(value_text)
}

impl CallflowModule for BranchVariable {
    const NAME: &'static str = "branch_variable";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Branch on the value of a variable",
            "required": ["variable"],
            "properties": {
                "variable": {"type": "string", "minLength": 1, "maxLength": 128},
                "scope": {"type": "string", "enum": ["custom_channel_vars", "account", "device", "user", "merged"],
                          "default": "custom_channel_vars"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let variable = data.variable.as_str();
        let value = match data.scope.as_str() {
            "account" => account_value(call, variable),
            "device" => document_value(call, "devices", "device_id", variable),
            "user" => document_value(call, "users", "owner_id", variable),
            "merged" => custom_value(call, variable)
                .or_else(|| document_value(call, "users", "owner_id", variable))
                .or_else(|| document_value(call, "devices", "device_id", variable))
                .or_else(|| account_value(call, variable)),
            _ => custom_value(call, variable),
        };
        tracing::debug!(
            variable,
            value = value.as_deref().unwrap_or("<unset>"),
            "branch_variable"
        );
        Ok(match value {
            Some(value) if !value.is_empty() => Next::Continue(value),
            _ => Next::default_child(),
        })
    }
}

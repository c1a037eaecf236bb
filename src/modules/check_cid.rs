//! `check_cid`: branches on the caller's number — a screening or VIP-routing step.
//!
//! Normal mode: the caller-ID number is tested against `regex` (the `regex` crate, linear time):
//! child `match` or `nomatch`, then `_`. On a match with `caller_id.external.{name,number}` and
//! `user_id` all set, the caller ID is rewritten first (`execute set effective_caller_id_*`).
//! Absolute mode: the child keyed by the exact caller-ID number, else `_`.

use super::set_cid;
use super::{CallflowModule, Next};
use crate::callflow::errors::{FieldErrors, join_path};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `check_cid` module.
pub struct CheckCid;

/// External caller ID to present on a match.
#[derive(Debug, Deserialize, Default)]
pub struct External {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Number.
    #[serde(default)]
    pub number: Option<String>,
}

/// Caller-ID rewrite settings.
#[derive(Debug, Deserialize, Default)]
pub struct CallerId {
    /// External caller ID.
    #[serde(default)]
    pub external: External,
}

/// `check_cid` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Regex tested against the caller-ID number.
    #[serde(default = "any")]
    pub regex: String,
    /// Branch on the exact number instead.
    #[serde(default)]
    pub use_absolute_mode: bool,
    /// Rewrite on match.
    #[serde(default)]
    pub caller_id: CallerId,
    /// Owner whose caller ID is used (all three must be set for a rewrite).
    #[serde(default)]
    pub user_id: Option<String>,
}

fn any() -> String {
    ".*".into()
}

impl CallflowModule for CheckCid {
    const NAME: &'static str = "check_cid";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Branch on the caller-ID number",
            "properties": {
                "regex": {"type": "string", "minLength": 1, "maxLength": 1024, "default": ".*"},
                "use_absolute_mode": {"type": "boolean", "default": false},
                "caller_id": {"type": "object", "properties": {
                    "external": {"type": "object", "properties": {
                        "name": {"type": "string", "maxLength": 128},
                        "number": {"type": "string", "maxLength": 64}
                    }}
                }},
                "user_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}
            }
        })
    }

    fn validate_extra(data: &Value, path: &str, errors: &mut FieldErrors) {
        if let Some(regex) = data.get("regex").and_then(Value::as_str) {
            if let Err(error) = regex::Regex::new(regex) {
                errors.add(
                    join_path(path, "regex"),
                    "pattern",
                    json!({"message": format!("invalid regular expression: {error}"), "value": regex}),
                );
            }
        }
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let number = call.caller_id_number().unwrap_or_default().to_string();
        if data.use_absolute_mode {
            return Ok(Next::Continue(number));
        }
        let matched = match regex::Regex::new(&data.regex) {
            Ok(regex) => regex.is_match(&number),
            Err(error) => {
                tracing::warn!(%error, "check_cid regex does not compile; treating as no match");
                false
            }
        };
        if !matched {
            return Ok(Next::Continue("nomatch".into()));
        }
        if let (Some(name), Some(cid_number), Some(_user)) = (
            data.caller_id.external.name.as_deref(),
            data.caller_id.external.number.as_deref(),
            data.user_id.as_deref(),
        ) {
            set_cid::apply(call, name, cid_number).await?;
        }
        Ok(Next::Continue("match".into()))
    }
}

//! `branch_bnumber`: branches on the dialled number's capture group — either to the child keyed
//! by it, or (with `hunt`) to whichever callflow of the account owns that number.
//!
//! ESL: none. Children: the capture group (the dialled number when the route had none), else
//! `_`. With `hunt: true` and the number allowed by `hunt_allow` / not denied by `hunt_deny`, the
//! callflow routing that number is branched to (`_` resumes after it); no route -> `_`.

use super::{CallflowModule, Next};
use crate::callflow::errors::{FieldErrors, join_path};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `branch_bnumber` module.
pub struct BranchBnumber;

/// `branch_bnumber` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Look the number up as a callflow.
    #[serde(default)]
    pub hunt: bool,
    /// Only numbers matching this regex may be hunted.
    #[serde(default)]
    pub hunt_allow: Option<String>,
    /// Numbers matching this regex may not be hunted.
    #[serde(default)]
    pub hunt_deny: Option<String>,
}

/// Whether `number` passes the allow/deny regexes (an invalid regex denies).
pub fn hunt_permitted(number: &str, allow: Option<&str>, deny: Option<&str>) -> bool {
    let check = |pattern: Option<&str>, default: bool| match pattern.filter(|p| !p.is_empty()) {
        None => default,
        Some(p) => regex::Regex::new(p)
            .map(|r| r.is_match(number))
            .unwrap_or(!default),
    };
    check(allow, true) && !check(deny, false)
}

/// Validates that hunt regexes compile (shared with `menu`).
pub fn validate_regexes(data: &Value, path: &str, keys: &[&str], errors: &mut FieldErrors) {
    for key in keys {
        if let Some(pattern) = data.get(*key).and_then(Value::as_str) {
            if let Err(error) = regex::Regex::new(pattern) {
                errors.add(
                    join_path(path, key),
                    "pattern",
                    json!({"message": format!("invalid regular expression: {error}"), "value": pattern}),
                );
            }
        }
    }
}

impl CallflowModule for BranchBnumber {
    const NAME: &'static str = "branch_bnumber";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Branch on the dialled number's capture group",
            "properties": {
                "hunt": {"type": "boolean", "default": false},
                "hunt_allow": {"type": "string", "maxLength": 1024},
                "hunt_deny": {"type": "string", "maxLength": 1024}
            }
        })
    }

    fn validate_extra(data: &Value, path: &str, errors: &mut FieldErrors) {
        validate_regexes(data, path, &["hunt_allow", "hunt_deny"], errors);
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let number = call
            .kvs
            .get("capture_group")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| call.destination_number().map(str::to_string))
            .unwrap_or_default();
        if data.hunt
            && hunt_permitted(
                &number,
                data.hunt_allow.as_deref(),
                data.hunt_deny.as_deref(),
            )
        {
            if let Some(route) = call.ctx.store.routing().lookup(&call.account_id, &number) {
                if let Some(flow) = super::callflow::load(call, &route.callflow_id) {
                    call.callflow_id = route.callflow_id.to_string();
                    return Ok(Next::Branch(Box::new(flow)));
                }
            }
            return Ok(Next::default_child());
        }
        Ok(Next::Continue(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_and_deny() {
        assert!(hunt_permitted("1000", None, None));
        assert!(hunt_permitted("1000", Some("^1"), None));
        assert!(!hunt_permitted("2000", Some("^1"), None));
        assert!(!hunt_permitted("1000", None, Some("^10")));
        assert!(!hunt_permitted("1000", Some("("), None));
    }
}

//! `branch_bnumber`: branches on the dialled number's capture group — either to the child keyed
//! by it, or (with `hunt`) to whichever callflow of the account owns that number.
//!
//! ESL: none. Children: the capture group (the dialled number when the route had none), else
//! `_`. With `hunt: true` and the number allowed by `hunt_allow` / not denied by `hunt_deny`, the
//! callflow routing that number is branched to (`_` resumes after it) with that route's capture
//! group; a refused number or no route -> `_`.

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
        if data.hunt {
            // Kazoo: a number the allow/deny rules refuse, or one no callflow routes, goes to `_`.
            if !hunt_permitted(
                &number,
                data.hunt_allow.as_deref(),
                data.hunt_deny.as_deref(),
            ) {
                tracing::info!(%number, "hunt not allowed for this number; continuing");
                return Ok(Next::default_child());
            }
            // The hunted flow sees its own route's capture group (Kazoo stores it too).
            return Ok(match super::callflow::route_number(call, &number) {
                Some(flow) => Next::Branch(Box::new(flow)),
                None => Next::default_child(),
            });
        }
        Ok(Next::Continue(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use crate::fakeswitch::CallScript;

    const HUNTED: &str = "00000000000000000000000000000f01";

    /// A `*5<digits>` pattern running branch_bnumber, and a callflow on 123 for hunting.
    fn store(data: Value) -> std::sync::Arc<crate::store::memory::MemStore> {
        let store = store_with_flow(validated(marker("thousand", json!({}))));
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000f00",
            json!({"patterns": ["^\\*5(\\d*)$"], "flow": validated(node(
                "branch_bnumber",
                data,
                json!({
                    "123": marker("child-123", json!({})),
                                        "_": marker("default", json!({}))
                }),
            ))}),
        );
        put_callflow(
            &store,
            HUNTED,
            json!(["123"]),
            marker("hunted-123", json!({})),
        );
        store
    }

    fn dial(number: &str) -> CallScript {
        CallScript::new(number).account(Some(ACCOUNT))
    }

    #[test]
    fn allow_and_deny() {
        assert!(hunt_permitted("1000", None, None));
        assert!(hunt_permitted("1000", Some("^1"), None));
        assert!(!hunt_permitted("2000", Some("^1"), None));
        assert!(!hunt_permitted("1000", None, Some("^10")));
        assert!(!hunt_permitted("1000", Some("("), None));
    }

    #[tokio::test]
    async fn capture_group_picks_the_child() {
        let sim = run_with_store(store(json!({})), dial("*5123")).await;
        assert_eq!(apps(&sim), ["set marker=child-123"]);
        assert_eq!(branches(&sim)[0], "123");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn no_child_for_the_number_takes_the_default() {
        let sim = run_with_store(store(json!({})), dial("*5999")).await;
        assert_eq!(markers(&sim), ["default"]);
    }

    #[tokio::test]
    async fn an_empty_capture_takes_the_default() {
        // Kazoo (master): an empty cf_capture_group skips to `_`.
        let sim = run_with_store(store(json!({})), dial("*5")).await;
        assert_eq!(markers(&sim), ["default"]);
    }

    #[tokio::test]
    async fn the_hunted_flow_sees_its_own_capture_group() {
        // *5<n> hunts n; n = 4<digits> is a pattern route whose flow branches on its capture.
        let store = store(json!({"hunt": true}));
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000f02",
            json!({"patterns": ["^4(\\d+)$"], "flow": validated(node(
                "branch_bnumber",
                json!({}),
                json!({"77": marker("inner-77", json!({})), "_": marker("inner-default", json!({}))}),
            ))}),
        );
        let sim = run_with_store(store, dial("*5477")).await;
        assert_eq!(markers(&sim), ["inner-77", "default"]);
    }

    #[tokio::test]
    async fn without_a_pattern_the_dialled_number_is_the_key() {
        let flow = node(
            "branch_bnumber",
            json!({}),
            json!({"1000": marker("thousand", json!({})), "_": marker("default", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(markers(&sim), ["thousand"]);
    }

    #[tokio::test]
    async fn hunt_branches_to_the_numbers_callflow_and_returns() {
        let sim = run_with_store(store(json!({"hunt": true})), dial("*5123")).await;
        // Branch (not the `123` child), then `_` resumes after the hunted flow stops.
        assert_eq!(markers(&sim), ["hunted-123", "default"]);
        assert_eq!(branches(&sim)[0], "branch -> set_variable");
    }

    #[tokio::test]
    async fn hunt_to_an_unrouted_or_denied_number_takes_the_default() {
        let sim = run_with_store(store(json!({"hunt": true})), dial("*5777")).await;
        assert_eq!(markers(&sim), ["default"]);
        let sim = run_with_store(
            store(json!({"hunt": true, "hunt_deny": "^12"})),
            dial("*5123"),
        )
        .await;
        assert_eq!(markers(&sim), ["default"]);
    }
}

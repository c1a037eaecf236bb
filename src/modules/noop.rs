//! `noop`: does nothing and continues; a placeholder node operators use while editing flows.
//!
//! ESL: none. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `noop` module.
pub struct Noop;

/// `noop` takes no arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl CallflowModule for Noop {
    const NAME: &'static str = "noop";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Do nothing, continue to `_`", "properties": {}})
    }

    async fn run(_data: Data, _node: &Node, _call: &mut Call) -> Result<Next, CallEnded> {
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn sends_nothing_and_continues() {
        let flow = node("noop", json!({}), json!({"_": marker("after", json!({}))}));
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(branches(&sim)[0], "_");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn without_children_the_call_is_hung_up() {
        let sim = run(node("noop", json!({}), json!({})), script()).await;
        assert!(apps(&sim).is_empty());
        assert_eq!(branches(&sim), ["_ (no child: stop)"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn not_launched_after_the_caller_hung_up() {
        let flow = node(
            "sleep",
            json!({"duration": 5}),
            json!({"_": node("noop", json!({}), json!({"_": marker("after", json!({}))}))}),
        );
        let sim = run(flow, script().hangup_after(Duration::from_millis(300))).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(modules_run(&sim), ["sleep"]);
    }
}

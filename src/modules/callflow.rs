//! `callflow`: runs another callflow of the account, then returns here: the current node's `_`
//! child is pushed on the executor's stack (Kazoo `branch`), so a shared sub-flow ("after-hours
//! message") can be reused from many flows.
//!
//! ESL: none itself. Children: `_` runs after the target flow stops; a missing or deleted target
//! continues to `_` at once.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `callflow` module.
pub struct Callflow;

/// `callflow` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Id of the callflow to run.
    pub id: String,
}

/// Loads a callflow's `flow` as nodes (`None` when missing, deleted or unparsable).
pub fn load(call: &Call, id: &str) -> Option<Node> {
    let doc = match call.ctx.store.document(&call.account_id, "callflows", id) {
        Ok(doc) => doc?,
        Err(error) => {
            tracing::error!(%error, callflow = id, "callflow lookup failed");
            return None;
        }
    };
    let flow = doc.get("flow")?;
    match Node::from_value(flow) {
        Ok(node) => Some(node),
        Err(error) => {
            tracing::warn!(%error, callflow = id, "stored flow does not parse");
            None
        }
    }
}

/// Routes `number` through the account's callflows (as a new call to it would be) and, when one
/// matches, makes it the current callflow with its own route context (capture group) and
/// returns the flow to branch to. Used by menu hunting, branch_bnumber, disa and dynamic_cid.
pub fn route_number(call: &mut Call, number: &str) -> Option<Node> {
    let route = call.ctx.store.routing().lookup(&call.account_id, number)?;
    let flow = load(call, &route.callflow_id)?;
    call.callflow_id = route.callflow_id.to_string();
    crate::engine::session::expose_route(call, &route);
    Some(flow)
}

impl CallflowModule for Callflow {
    const NAME: &'static str = "callflow";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Branch to another callflow, returning to `_` afterwards",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "The callflow id to branch to"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        match load(call, &data.id) {
            Some(flow) => {
                call.callflow_id = data.id;
                Ok(Next::Branch(Box::new(flow)))
            }
            None => {
                tracing::warn!(callflow = %data.id, "branch target missing; continuing");
                Ok(Next::default_child())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;

    const TARGET: &str = "00000000000000000000000000000c0f";

    fn calling(target: &str, children: serde_json::Value) -> serde_json::Value {
        validated(node("callflow", json!({"id": target}), children))
    }

    #[tokio::test]
    async fn runs_the_target_then_returns_to_the_default_child() {
        let store = store_with_flow(calling(TARGET, json!({"_": marker("after", json!({}))})));
        put_callflow(
            &store,
            TARGET,
            json!(["2000"]),
            node(
                "answer",
                json!({}),
                json!({"_": marker("target", json!({}))}),
            ),
        );
        let sim = run_with_store(store, script()).await;
        assert_eq!(
            apps(&sim),
            ["answer", "set marker=target", "set marker=after"]
        );
        assert_eq!(branches(&sim)[0], "branch -> answer");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn without_a_default_child_the_call_ends_after_the_target() {
        let store = store_with_flow(calling(TARGET, json!({})));
        put_callflow(&store, TARGET, json!([]), marker("target", json!({})));
        let sim = run_with_store(store, script()).await;
        assert_eq!(markers(&sim), ["target"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn unknown_or_deleted_target_continues_at_once() {
        let store = store_with_flow(calling(TARGET, json!({"_": marker("after", json!({}))})));
        let sim = run_with_store(store.clone(), script()).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(branches(&sim)[0], "_");

        put_callflow(&store, TARGET, json!([]), marker("target", json!({})));
        store.remove(crate::engine::testkit::ACCOUNT, "callflows", TARGET);
        let sim = run_with_store(store, script()).await;
        assert_eq!(markers(&sim), ["after"]);
    }

    #[tokio::test]
    async fn caller_hangup_inside_the_target_skips_the_return() {
        let store = store_with_flow(calling(TARGET, json!({"_": marker("after", json!({}))})));
        put_callflow(
            &store,
            TARGET,
            json!([]),
            node("play", json!({"id": "long.wav"}), json!({})),
        );
        let sim = run_with_store(store, caller_hangs_up_mid_media()).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert!(markers(&sim).is_empty());
        assert_eq!(modules_run(&sim), ["callflow", "play"]);
    }
}

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

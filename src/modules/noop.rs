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

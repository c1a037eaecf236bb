//! `answer`: answers the channel.
//!
//! ESL: `execute answer`. Children: `_`. A hangup ends the flow.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `answer` module.
pub struct Answer;

/// `answer` takes no arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl CallflowModule for Answer {
    const NAME: &'static str = "answer";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Answer the call",
            "properties": {}
        })
    }

    async fn run(_data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        call.execute("answer", "").await?;
        Ok(Next::default_child())
    }
}

//! `offnet`: Kazoo's "call out through the carriers" module. callflowd has no separate carrier
//! tier, so it is `resources` with the same data, rules and failover (see [`super::resources`]).

use super::resources::{self, Data};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde_json::Value;

/// The `offnet` module.
pub struct Offnet;

impl CallflowModule for Offnet {
    const NAME: &'static str = "offnet";
    type Data = Data;

    fn schema() -> Value {
        resources::data_schema("Call out through the carriers (same as resources in callflowd)")
    }

    async fn run(data: Data, node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        resources::place(data, node, call).await
    }
}

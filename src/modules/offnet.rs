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

#[cfg(test)]
mod tests {
    use crate::engine::testkit::{apps, branches, node, run_with_store, script, store_for};
    use crate::fakeswitch::BridgeOutcome;
    use crate::modules::bridge::tests::{PREPARE, assert_hung_up_by_engine, bridges, play};
    use crate::modules::resources::tests::{all_gateways, carriers};
    use serde_json::json;

    #[tokio::test]
    async fn places_the_call_like_resources() {
        let store = store_for(node(
            "offnet",
            json!({"to_did": "+14155550100", "timeout": 45}),
            json!({}),
        ));
        carriers(&store);
        let sim = run_with_store(store, script()).await;
        assert_eq!(
            apps(&sim),
            [PREPARE.to_string(), format!("bridge {}", all_gateways(45))]
        );
        assert_eq!(branches(&sim), ["stop"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn failures_branch_or_hang_up_with_the_cause() {
        let store = store_for(node(
            "offnet",
            json!({"to_did": "+14155550100"}),
            json!({"NO_ANSWER": play("noanswer.wav")}),
        ));
        carriers(&store);
        let sim = run_with_store(
            store,
            script().bridge("*", BridgeOutcome::failed("NO_ANSWER")),
        )
        .await;
        assert_eq!(branches(&sim)[0], "NO_ANSWER");

        let store = store_for(node("offnet", json!({"to_did": "+3312345678"}), json!({})));
        carriers(&store);
        let sim = run_with_store(store, script()).await;
        assert!(bridges(&sim).is_empty());
        assert_hung_up_by_engine(&sim, "NO_ROUTE_DESTINATION");
    }
}

//! Runs one triggered metaflow node (and its children) on a call, from inside the call's event
//! wait, so the main flow's state (its current node, stack, pending app) is untouched: the main
//! flow resumes where it was, unless the node ended or moved the call.
//!
//! Children inherit the code's `dtmf_leg` (who pressed it), so a `play` to `self` after a far-end
//! `hold` still reaches the far end.

use crate::callflow::model::Node;
use crate::engine::call::{Call, TimelineEntry};
use crate::modules::metaflow::{self, MetaNext};

/// Most metaflow nodes one code may run.
pub const MAX_METAFLOW_STEPS: usize = 16;

/// Runs `node` and follows its children.
pub async fn run(call: &mut Call, node: Node) {
    let mut current = node;
    for _ in 0..MAX_METAFLOW_STEPS {
        // A node that moved the call away (a blind transfer of this leg) ends the run: its
        // children would act on a channel that is no longer ours.
        if let Some(ended) = call.ended() {
            tracing::info!(%ended, "metaflow stopped: the call is no longer ours");
            return;
        }
        let Some(entry) = metaflow::get(&current.module) else {
            tracing::warn!(module = %current.module, "unknown metaflow module; ignored");
            return;
        };
        // The data shows what detection added (`collected`, `captures`, `dtmf_leg`).
        call.note(TimelineEntry::Note {
            text: format!("metaflow module {} {}", current.module, current.data),
        });
        metrics::counter!("callflowd_metaflow_runs_total", "module" => entry.name).increment(1);
        let next = entry.run(&current, call).await;
        match next {
            Ok(MetaNext::Continue(key)) => {
                let child = current
                    .children
                    .remove(&key)
                    .or_else(|| current.children.remove("_"));
                match child {
                    Some(child) if !child.is_empty() => {
                        let pressed_by = current.data.get("dtmf_leg").cloned();
                        current = child;
                        inherit(&mut current, "dtmf_leg", pressed_by);
                    }
                    _ => return,
                }
            }
            Ok(MetaNext::Stop) => return,
            Err(ended) => {
                tracing::info!(%ended, "metaflow stopped: the call ended");
                return;
            }
        }
    }
    tracing::warn!("metaflow ran too many steps; stopped");
}

/// Gives `node` the parent's `key` unless it sets its own.
fn inherit(node: &mut Node, key: &str, value: Option<serde_json::Value>) {
    let Some(value) = value else {
        return;
    };
    if !node.data.is_object() {
        node.data = serde_json::Value::Object(Default::default());
    }
    if let Some(data) = node.data.as_object_mut() {
        data.entry(key).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::{node, run, script};
    use crate::fakeswitch::BridgeOutcome;
    use serde_json::{Value, json};
    use std::time::Duration;

    fn apis(sim: &crate::engine::simulate::Simulation) -> Vec<String> {
        sim.transcript
            .command_lines()
            .into_iter()
            .filter(|l| l.starts_with("api "))
            .collect()
    }

    fn device_flow(metaflow: Value) -> (Value, Value) {
        let flow = node("resources", json!({"to_did": "5551234"}), json!({}));
        (flow, metaflow)
    }

    #[tokio::test]
    async fn star_code_during_a_bridge_transfers_the_peer() {
        let (flow, metaflow) = device_flow(json!({
            "patterns": {"^2(\\d+)$": {"module": "transfer", "data": {"transfer_type": "blind"}}}
        }));
        let store = crate::engine::testkit::store_with_flow(flow);
        store.put(
            crate::engine::testkit::ACCOUNT,
            "callflows",
            "cf000000000000000000000000000001",
            json!({"numbers": ["1000"], "metaflow": metaflow,
                   "flow": node("resources", json!({"to_did": "5551234"}), json!({}))}),
        );
        store.put(
            crate::engine::testkit::ACCOUNT,
            "resources",
            "res00000000000000000000000000001",
            json!({"name": "carrier", "rules": ["^(\\d+)$"], "gateways": [{"server": "sip.example"}]}),
        );
        let script = script()
            .bridge("sofia/", BridgeOutcome::answered(Duration::from_secs(3)))
            .dtmf("*@1s,2@1100ms,1@1200ms,0@1300ms,1@1400ms")
            .expect("digits");
        let sim = crate::engine::testkit::run_with_store(store, script).await;
        let apis = apis(&sim);
        assert!(
            apis.iter()
                .any(|a| a.starts_with("api uuid_transfer ") && a.ends_with(" 101 XML default")),
            "{apis:?}"
        );
    }

    #[tokio::test]
    async fn unmatched_code_goes_back_to_the_main_flow() {
        let flow = node(
            "collect_dtmf",
            json!({"max_digits": 3, "timeout": 3000, "interdigit_timeout": 1500, "collection_name": "x"}),
            json!({"_": node("branch_variable", json!({"variable": "x"}), json!({
                "*9": node("hangup", json!({"cause": "USER_BUSY"}), json!({})),
                "_": node("hangup", json!({"cause": "CALL_REJECTED"}), json!({}))
            }))}),
        );
        let store = crate::engine::testkit::store_with_flow(flow.clone());
        store.put(
            crate::engine::testkit::ACCOUNT,
            "callflows",
            "cf000000000000000000000000000001",
            json!({"numbers": ["1000"], "flow": flow,
                   "metaflow": {"numbers": {"2": {"module": "break", "data": {}}}}}),
        );
        let script = script().dtmf("*@300ms,9@400ms").expect("digits");
        let sim = crate::engine::testkit::run_with_store(store, script).await;
        assert_eq!(
            sim.transcript.hangup_cause(),
            Some("USER_BUSY"),
            "{:?}",
            sim.report.timeline
        );
        let _ = run;
    }
}

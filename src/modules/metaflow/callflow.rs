//! Metaflow `callflow`: runs a callflow on this leg in the middle of the call — by `id`, or the
//! one the code's digits route to (`*7` + `1234` with pattern `^7(\d+)$`). What is going on is
//! interrupted: a bridge ends (`uuid_kill <peer>`), media stops (`uuid_break <uuid>`; not `all`,
//! which would flush queued commands), the current module's waits end at once
//! ([`Call::request_branch`]), then the executor branches to the callflow, and when it stops the
//! main flow resumes at the interrupted node's `_`. The metaflow's own children run first. The
//! callflow always runs on this (the caller's) leg, whoever pressed.
//! Children: `_`; nothing to run -> `no_callflow`.

use super::{MetaNext, MetaflowModule, first_capture};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `callflow` metaflow module.
pub struct Callflow;

/// `callflow` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Callflow id.
    #[serde(default)]
    pub id: Option<String>,
    /// Captures of the triggering pattern.
    #[serde(default)]
    pub captures: Vec<String>,
    /// The code.
    #[serde(default)]
    pub collected: Option<String>,
}

impl MetaflowModule for Callflow {
    const NAME: &'static str = "callflow";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Run a callflow (by id or by the dialled digits) on this leg",
            "properties": {"id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let id = match data.id {
            Some(id) => Some(id),
            None => first_capture(&data.captures, &data.collected).and_then(|number| {
                call.ctx
                    .store
                    .routing()
                    .lookup(&call.account_id, &number)
                    .map(|route| route.callflow_id.to_string())
            }),
        };
        let Some(flow) = id
            .as_deref()
            .and_then(|id| crate::modules::callflow::load(call, id))
        else {
            return Ok(MetaNext::Continue("no_callflow".into()));
        };
        call.request_branch(flow);
        let uuid = call.uuid.clone();
        if let Some(peer) = call.peer_uuid().map(str::to_string) {
            call.api(&format!("uuid_kill {peer}")).await?;
        }
        call.api(&format!("uuid_break {uuid}")).await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        SUB, apis, bridge_flow, bridged_call, codes, me, meta, one_code, peer, said, said_line,
        secs, store, unbridged_flow,
    };
    use crate::engine::testkit::{
        ACCOUNT, branches, completed, marker, markers, run_with_store, script, validated,
    };
    use crate::store::memory::MemStore;
    use serde_json::{Value, json};
    use std::sync::Arc;

    /// The bridging main flow (then `after`) with `metaflow`, and SUB (marker `sub`) on 2000.
    fn with_sub(metaflow: Value) -> Arc<MemStore> {
        let store = store(
            bridge_flow(json!({"_": marker("after", json!({}))})),
            metaflow,
        );
        store.put(
            ACCOUNT,
            "callflows",
            SUB,
            json!({"numbers": ["2000"], "flow": validated(marker("sub", json!({})))}),
        );
        store
    }

    #[tokio::test]
    async fn by_id_interrupts_the_bridge_and_the_main_flow_resumes_after_it() {
        let metaflow = one_code(
            "6",
            meta(
                "callflow",
                json!({"id": SUB}),
                json!({"_": said("branching")}),
            ),
        );
        let sim =
            run_with_store(with_sub(metaflow), bridged_call(secs(4), "*6@bridge+300ms")).await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_kill {peer}"),
                format!("uuid_break {me}"),
                said_line(&me, "branching"),
            ]
        );
        assert_eq!(markers(&sim), ["sub", "after"]);
        assert!(
            branches(&sim).contains(&"branch -> set_variable".to_string()),
            "{:?}",
            branches(&sim)
        );
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn by_the_collected_digits_routes_them_like_a_dialled_number() {
        let metaflow = json!({"digit_timeout": 1200,
            "patterns": {"^6(\\d+)$": meta("callflow", json!({}), json!({}))}});
        let sim = run_with_store(
            with_sub(metaflow),
            bridged_call(secs(4), "*62000@bridge+300ms"),
        )
        .await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(codes(&sim), ["*62000 on self: callflow"]);
        assert_eq!(
            apis(&sim),
            [format!("uuid_kill {peer}"), format!("uuid_break {me}")]
        );
        assert_eq!(markers(&sim), ["sub", "after"]);
    }

    #[tokio::test]
    async fn nothing_routed_takes_the_no_callflow_child() {
        let metaflow = json!({"digit_timeout": 1200, "patterns": {"^6(\\d+)$": meta(
            "callflow",
            json!({}),
            json!({"no_callflow": said("nowhere"), "_": said("default")}),
        )}});
        let sim = run_with_store(
            with_sub(metaflow),
            bridged_call(secs(4), "*6999@bridge+300ms"),
        )
        .await;
        assert_eq!(apis(&sim), [said_line(&me(&sim), "nowhere")]);
        assert!(markers(&sim).is_empty(), "the main flow is not disturbed");
    }

    #[tokio::test]
    async fn unbridged_stops_the_prompt_and_resumes_after_the_interrupted_node() {
        let metaflow = one_code("6", meta("callflow", json!({"id": SUB}), json!({})));
        let store = store(
            unbridged_flow(json!({"_": marker("after", json!({}))})),
            metaflow,
        );
        store.put(
            ACCOUNT,
            "callflows",
            SUB,
            json!({"numbers": ["2000"], "flow": validated(marker("sub", json!({})))}),
        );
        let script = script().dtmf("*6@playback+300ms").expect("digits");
        let sim = run_with_store(store, script).await;
        assert_eq!(apis(&sim), [format!("uuid_break {}", me(&sim))]);
        assert_eq!(markers(&sim), ["sub", "after"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }
}

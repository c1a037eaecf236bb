//! Metaflow `hangup`: ends the conversation with the far end — the peer is hung up and the caller
//! returns to the callflow (a bridge ends); without a peer, the caller's own leg is hung up.
//! Whoever pressed, the far end is the one hung up: for a far end's code that is Kazoo's rule
//! (the presser hangs up); for the caller's it differs on purpose (the caller's flow goes on).
//! API: `uuid_kill <peer|uuid>`. Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `hangup` metaflow module.
pub struct Hangup;

/// No arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl MetaflowModule for Hangup {
    const NAME: &'static str = "hangup";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Hang up the far end (or this leg when not bridged)", "properties": {}})
    }

    async fn run(_data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let target = call
            .peer_uuid()
            .map(str::to_string)
            .unwrap_or_else(|| call.uuid.clone());
        call.api(&format!("uuid_kill {target}")).await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        apis, me, meta, one_code, peer, run_bridged, run_pressed_by_peer, said, said_line, secs,
        store, unbridged_flow,
    };
    use crate::engine::call::CallEnded;
    use crate::engine::executor::FlowEnd;
    use crate::engine::session::SessionEnd;
    use crate::engine::testkit::{marker, markers, run_with_store, script};
    use crate::fakeswitch::HangupBy;
    use serde_json::json;

    #[tokio::test]
    async fn bridged_hangs_up_the_peer_and_takes_the_default_child() {
        let metaflow = one_code("0", meta("hangup", json!({}), json!({"_": said("bye")})));
        let sim = run_bridged(metaflow, secs(4), "*0@bridge+300ms").await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [format!("uuid_kill {peer}"), said_line(&me, "bye")]
        );
    }

    #[tokio::test]
    async fn without_a_peer_kills_this_leg_and_the_main_flow_ends_cleanly() {
        let metaflow = one_code("0", meta("hangup", json!({}), json!({})));
        let flow = unbridged_flow(json!({"_": marker("after", json!({}))}));
        let script = script().dtmf("*0@playback+300ms").expect("digits");
        let sim = run_with_store(store(flow, metaflow), script).await;
        assert_eq!(apis(&sim), [format!("uuid_kill {}", me(&sim))]);
        assert_eq!(
            sim.report.end,
            SessionEnd::Flow(FlowEnd::Ended(CallEnded::HungUp("NORMAL_CLEARING".into())))
        );
        assert!(markers(&sim).is_empty(), "no module runs after the hangup");
        let hangup = sim.transcript.hangup.as_ref().expect("hung up");
        assert_eq!(hangup.by, HangupBy::Controller);
        assert!(sim.transcript.hangup_complete_at.is_some());
        assert!(sim.transcript.controller_closed_after_hangup_complete);
    }

    #[tokio::test]
    async fn pressed_by_the_far_end_hangs_the_far_end_up() {
        let metaflow = one_code("0", meta("hangup", json!({}), json!({})));
        let sim = run_pressed_by_peer(metaflow, "*0", "").await;
        assert_eq!(apis(&sim), [format!("uuid_kill {}", peer(&sim))]);
    }
}

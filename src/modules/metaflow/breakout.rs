//! Metaflow `break`: stops what the caller is hearing (a long prompt, hold music, a metaflow
//! announcement) so the main flow moves on. API: `uuid_break <uuid>` — without `all`, which
//! would also flush the commands queued on the channel, among them the main flow's next app
//! whose completion the flow is waiting for. Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `break` metaflow module.
pub struct Break;

/// No arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl MetaflowModule for Break {
    const NAME: &'static str = "break";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Stop the media playing on this leg", "properties": {}})
    }

    async fn run(_data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let uuid = call.uuid.clone();
        call.api(&format!("uuid_break {uuid}")).await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{apis, codes, me, meta, said, said_line, store, unbridged_flow};
    use crate::engine::testkit::{completed, marker, markers, node, run_with_store, script};
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn break_stops_the_playing_prompt_and_the_main_flow_moves_on() {
        let metaflow = json!({"digit_timeout": 1200,
            "numbers": {"0": meta("break", json!({}), json!({"_": said("broken")}))}});
        let flow = unbridged_flow(json!({"_": marker("next", json!({}))}));
        let script = script().dtmf("*0@playback+300ms").expect("digits");
        let sim = run_with_store(store(flow, metaflow), script).await;
        let me = me(&sim);
        assert_eq!(
            apis(&sim),
            [format!("uuid_break {me}"), said_line(&me, "broken")]
        );
        assert_eq!(markers(&sim), ["next"]);
        let playback = sim
            .transcript
            .apps
            .iter()
            .find(|a| a.app == "playback")
            .expect("the prompt played");
        assert_eq!(playback.response.as_deref(), Some("FILE PLAYED"));
        let played = playback.completed.expect("completed") - playback.started;
        assert!(played < Duration::from_secs(7), "stopped early: {played:?}");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn break_never_flushes_the_main_flows_queued_app() {
        // `*8` plays an announcement over the main flow (queued behind a.wav); when a.wav ends
        // the main flow's next playback (b.wav) queues behind the announcement; `*0` then
        // stops the announcement. `uuid_break <uuid> all` would also flush b.wav, whose
        // completion the main flow is waiting for: the call would hang until its deadline.
        let metaflow = json!({"digit_timeout": 1000, "numbers": {
            "8": meta("play", json!({"id": "/c.wav"}), json!({})),
            "0": meta("break", json!({}), json!({})),
        }});
        let flow = node(
            "play",
            json!({"id": "/a.wav", "terminators": []}),
            json!({"_": node(
                "play",
                json!({"id": "/b.wav", "terminators": []}),
                json!({"_": marker("done", json!({}))}),
            )}),
        );
        let script = script()
            .file_duration("/a.wav", Duration::from_secs(3))
            .file_duration("/c.wav", Duration::from_secs(5))
            .file_duration("/b.wav", Duration::from_millis(300))
            .dtmf("*8@playback+300ms,*0@4500ms")
            .expect("digits");
        let sim = run_with_store(store(flow, metaflow), script).await;
        let me = me(&sim);
        assert_eq!(codes(&sim), ["*8 on self: play", "*0 on self: break"]);
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_broadcast {me} '/c.wav' aleg"),
                format!("uuid_break {me}"),
            ]
        );
        assert_eq!(markers(&sim), ["done"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
        let played: Vec<&str> = sim
            .transcript
            .apps
            .iter()
            .filter(|a| a.app == "playback")
            .map(|a| a.arg.as_str())
            .collect();
        assert_eq!(played, ["/a.wav", "/c.wav", "/b.wav"]);
    }
}

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

#[cfg(test)]
mod tests {
    use crate::engine::executor::FlowEnd;
    use crate::engine::session::SessionEnd;
    use crate::engine::testkit::{apps, node, run, script};
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn answers_then_continues_and_hangs_up_at_the_end() {
        let flow = node(
            "answer",
            json!({}),
            json!({"_": node("hangup", json!({}), json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["answer", "hangup NORMAL_CLEARING"]);
        assert_eq!(
            sim.report.end,
            SessionEnd::Flow(FlowEnd::Hangup("NORMAL_CLEARING".into()))
        );
        assert_eq!(sim.transcript.hangup_cause(), Some("NORMAL_CLEARING"));
        // Set-up: connect, myevents, linger, resume, then one sendmsg per app.
        let lines = sim.transcript.command_lines();
        assert_eq!(
            &lines[..4],
            ["connect", "myevents plain", "linger 2", "resume"]
        );
    }

    #[tokio::test]
    async fn caller_hangup_before_answer_ends_the_flow() {
        let flow = node(
            "answer",
            json!({}),
            json!({"_": node("play", json!({"id": "silence_stream://5000"}), json!({}))}),
        );
        let sim = run(
            flow,
            script()
                .app_start_delay(Duration::from_millis(300))
                .hangup_after(Duration::from_millis(100)),
        )
        .await;
        assert!(
            matches!(sim.report.end, SessionEnd::Flow(FlowEnd::Ended(_))),
            "{:?}",
            sim.report.end
        );
        assert!(!apps(&sim).iter().any(|a| a.starts_with("playback")));
    }
}

//! `hangup`: hangs the call up with a cause and stops the flow (Kazoo: queued hangup +
//! `hard_stop`, ignoring any callflow that branched here).
//!
//! ESL: `execute hangup <cause>` (default NORMAL_CLEARING). Children: none.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `hangup` module.
pub struct Hangup;

/// `hangup` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Q.850 cause name sent to FreeSWITCH's `hangup` app.
    #[serde(default = "default_cause")]
    pub cause: String,
}

fn default_cause() -> String {
    "NORMAL_CLEARING".into()
}

impl CallflowModule for Hangup {
    const NAME: &'static str = "hangup";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Hang the call up",
            "properties": {
                "cause": {
                    "type": "string",
                    "description": "Q.850 hangup cause name (FreeSWITCH spelling)",
                    "pattern": "^[A-Z][A-Z0-9_]{1,63}$",
                    "default": "NORMAL_CLEARING"
                }
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        match call.execute("hangup", &data.cause).await {
            // The hangup's own CHANNEL_HANGUP arrives before its EXECUTE_COMPLETE: success.
            Ok(_) | Err(CallEnded::HungUp(_)) => Ok(Next::HardStop),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use crate::fakeswitch::HangupBy;
    use serde_json::json;

    #[tokio::test]
    async fn hangs_up_normal_clearing_and_hard_stops() {
        // A child under hangup is never reached (hard_stop).
        let flow = node(
            "hangup",
            json!({}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["hangup NORMAL_CLEARING"]);
        assert_eq!(branches(&sim), ["hard_stop"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
        let hangup = sim.transcript.hangup.clone().expect("hung up");
        assert_eq!(hangup.by, HangupBy::Controller);
    }

    #[tokio::test]
    async fn sends_the_configured_cause() {
        let flow = node(
            "hangup",
            json!({"cause": "CALL_REJECTED"}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["hangup CALL_REJECTED"]);
        assert!(markers(&sim).is_empty());
        assert_eq!(sim.transcript.hangup_cause(), Some("CALL_REJECTED"));
    }

    #[tokio::test]
    async fn caller_hangup_first_still_hard_stops() {
        let flow = node(
            "hangup",
            json!({}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, caller_gone_before_first_app()).await;
        assert_eq!(apps(&sim), ["hangup NORMAL_CLEARING"]);
        assert_eq!(branches(&sim), ["hard_stop"]);
        let hangup = sim.transcript.hangup.clone().expect("hung up");
        assert_eq!(hangup.by, HangupBy::Caller);
        assert!(markers(&sim).is_empty());
    }
}

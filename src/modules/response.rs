//! `response`: answers the SIP INVITE with a final (or early) response and stops.
//!
//! ESL: with `media`: `execute pre_answer`, `execute playback <media>`; then
//! `execute respond <code> <message>`. FreeSWITCH hangs the channel up for codes >= 300.
//! Children: none (Kazoo: stop).

use super::media;
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `response` module.
pub struct Response;

/// `response` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// SIP response code (Kazoo default 486).
    #[serde(default = "busy")]
    pub code: u16,
    /// Reason phrase (default: FreeSWITCH's standard phrase for the code).
    #[serde(default)]
    pub message: Option<String>,
    /// Early media played before the response.
    #[serde(default)]
    pub media: Option<String>,
}

fn busy() -> u16 {
    486
}

impl CallflowModule for Response {
    const NAME: &'static str = "response";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Send a SIP response to the caller",
            "required": ["code"],
            "properties": {
                "code": {"type": "integer", "minimum": 100, "maximum": 699, "default": 486, "description": "SIP response code"},
                "message": {"type": "string", "maxLength": 128, "pattern": "^[^\\r\\n]*$", "description": "Reason phrase"},
                "media": {"type": "string", "minLength": 1, "maxLength": 2048, "description": "Early media to play first"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        if let Some(reference) = data.media.as_deref().filter(|m| !m.is_empty()) {
            call.execute("pre_answer", "").await?;
            media::play(call, reference).await?;
        }
        let arg = match data
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(message) => format!("{} {}", data.code, message),
            None => data.code.to_string(),
        };
        match call.execute("respond", &arg).await {
            // A final response ends the channel: its CHANNEL_HANGUP may beat the completion.
            Ok(_) | Err(CallEnded::HungUp(_)) => Ok(Next::Stop),
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
    async fn responds_486_and_stops() {
        // Kazoo: response stops; the children are never run, FreeSWITCH ends the channel.
        let flow = node(
            "response",
            json!({"code": 486}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["respond 486"]);
        assert_eq!(branches(&sim), ["stop"]);
        assert!(markers(&sim).is_empty());
        let hangup = sim.transcript.hangup.clone().expect("hung up");
        assert_eq!(
            (hangup.cause.as_str(), hangup.by),
            ("USER_BUSY", HangupBy::Controller)
        );
    }

    #[tokio::test]
    async fn plays_early_media_then_responds_with_the_message() {
        let flow = node(
            "response",
            json!({"code": 503, "message": "Service Unavailable", "media": "ivr/ivr-not_available.wav"}),
            json!({}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(
            apps(&sim),
            [
                "pre_answer",
                "playback ivr/ivr-not_available.wav",
                "respond 503 Service Unavailable"
            ]
        );
        assert!(sim.transcript.hangup_cause().is_some());
    }

    #[tokio::test]
    async fn missing_media_still_responds() {
        let flow = node(
            "response",
            json!({"code": 404, "media": "custom/missing.wav"}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, script().missing_file("missing")).await;
        assert_eq!(
            apps(&sim),
            ["pre_answer", "playback custom/missing.wav", "respond 404"]
        );
        assert_eq!(
            sim.transcript.app_responses()[1],
            ("playback".to_string(), "FILE NOT FOUND".to_string())
        );
        assert!(markers(&sim).is_empty());
        assert_eq!(sim.transcript.hangup_cause(), Some("UNALLOCATED_NUMBER"));
    }

    #[tokio::test]
    async fn caller_hangup_during_media_sends_no_response() {
        let flow = node(
            "response",
            json!({"code": 486, "media": "ivr/ivr-not_available.wav"}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, caller_hangs_up_mid_media()).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(
            apps(&sim),
            ["pre_answer", "playback ivr/ivr-not_available.wav"]
        );
        assert_eq!(
            sim.transcript.hangup.clone().map(|h| h.by),
            Some(HangupBy::Caller)
        );
    }
}

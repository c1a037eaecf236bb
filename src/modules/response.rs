//! `response`: answers the SIP INVITE with a final (or early) response and stops.
//!
//! ESL: with `media`: `execute pre_answer`, `execute playback <media>`; then
//! `execute respond <code> <message>`. FreeSWITCH hangs the channel up for codes >= 300.
//! Children: none (Kazoo: stop).

use super::media::{self, Media};
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
            let completion = match media::resolve(reference) {
                Media::Playback(path) => call.execute_long("playback", &path).await,
                Media::Speak(text) => {
                    call.execute_long("speak", &media::flite_arg("female", &text))
                        .await
                }
            };
            completion?;
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

//! `tts`: speaks text with FreeSWITCH's flite engine.
//!
//! ESL: `execute set playback_terminators=<keys>` (when it changes), then
//! `execute speak flite|<voice>|<text>` (female = `slt`, male = `rms`), or, with
//! `endless_playback`, repeated until the caller presses a terminator or hangs up.
//! Children: `_`. An engine other than flite is refused at validation: callflowd has no media
//! server to render it (Kazoo falls back to flite the same way).

use super::media;
use super::play::{all_keys, set_terminators};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `tts` module.
pub struct Tts;

/// `tts` data (Kazoo's `callflows.tts`).
#[derive(Debug, Deserialize)]
pub struct Data {
    /// What to say.
    pub text: String,
    /// `female` or `male` (or a flite voice name).
    #[serde(default = "female")]
    pub voice: String,
    /// Language tag; flite speaks English only, so it is kept for logs and future engines.
    #[serde(default)]
    pub language: Option<String>,
    /// DTMF keys that stop the speech.
    #[serde(default = "all_keys")]
    pub terminators: Vec<String>,
    /// Repeat until a terminator or hangup.
    #[serde(default)]
    pub endless_playback: bool,
}

fn female() -> String {
    "female".into()
}

impl CallflowModule for Tts {
    const NAME: &'static str = "tts";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Text to speech (flite)",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 1000},
                "voice": {"type": "string", "enum": ["female", "male", "slt", "rms", "kal", "awb"], "default": "female"},
                "language": {"type": "string", "pattern": "^[A-Za-z]{2}(-[A-Za-z]{2})?$"},
                "engine": {"type": "string", "enum": ["flite"], "default": "flite"},
                "terminators": {"type": "array", "default": all_keys(),
                    "items": {"type": "string", "enum": ["1","2","3","4","5","6","7","8","9","*","0","#"]}},
                "endless_playback": {"type": "boolean", "default": false}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        set_terminators(call, &data.terminators).await?;
        let arg = media::flite_arg(&data.voice, &data.text);
        loop {
            let pressed_before = call.pending_dtmf().count();
            call.execute_long("speak", &arg).await?;
            if !data.endless_playback || call.pending_dtmf().count() > pressed_before {
                break;
            }
        }
        Ok(Next::default_child())
    }
}

//! Metaflow `tts`: speaks text to one or both legs with flite.
//! API: `uuid_broadcast <uuid> 'speak::flite|<voice>|<text>' aleg|bleg|both`. Children: `_`.

use super::{MetaNext, MetaflowModule, broadcast};
use crate::engine::call::{Call, CallEnded};
use crate::modules::media;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `tts` metaflow module.
pub struct Tts;

/// `tts` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// What to say.
    pub text: String,
    /// `female` or `male`.
    #[serde(default = "female")]
    pub voice: String,
    /// `self`, `peer` or `both`.
    #[serde(default = "self_leg")]
    pub leg: String,
}

fn female() -> String {
    "female".into()
}
fn self_leg() -> String {
    "self".into()
}

impl MetaflowModule for Tts {
    const NAME: &'static str = "tts";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Speak text to one or both legs",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 1000},
                "voice": {"type": "string", "enum": ["female", "male"], "default": "female"},
                "engine": {"type": "string", "enum": ["flite"], "default": "flite"},
                "leg": {"type": "string", "enum": ["self", "peer", "both"], "default": "self"}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let what = format!("speak::{}", media::flite_arg(&data.voice, &data.text));
        broadcast(call, &what, &data.leg).await?;
        Ok(MetaNext::default_child())
    }
}

//! Metaflow `tts`: speaks text to one or both legs with flite.
//! API: `uuid_broadcast <uuid> 'speak::flite|<voice>|<text>' aleg|bleg|both` (`aleg` when not
//! bridged; female = slt, male = rms); `leg` is seen from whoever pressed the code (the far
//! end's `self` is `bleg`). Children: `_`.

use super::{MetaNext, MetaflowModule, broadcast, leg_from_here};
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
    /// `self`, `peer` or `both`, from the side of whoever pressed the code.
    #[serde(default = "self_leg")]
    pub leg: String,
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
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
        broadcast(
            call,
            &what,
            leg_from_here(&data.leg, data.dtmf_leg.as_deref()),
        )
        .await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{apis, me, meta, one_code, run_bridged, said, said_line, secs};
    use serde_json::json;

    fn speak_to(leg: &str) -> serde_json::Value {
        one_code(
            "1",
            meta(
                "tts",
                json!({"text": "you are | on air", "voice": "male", "leg": leg}),
                json!({"_": said("spoken")}),
            ),
        )
    }

    #[tokio::test]
    async fn speaks_to_self_peer_or_both_legs_while_bridged() {
        let (to_self, to_peer, to_both) = tokio::join!(
            run_bridged(speak_to("self"), secs(4), "*1@bridge+300ms"),
            run_bridged(speak_to("peer"), secs(4), "*1@bridge+300ms"),
            run_bridged(speak_to("both"), secs(4), "*1@bridge+300ms"),
        );
        for (sim, legs) in [(to_self, "aleg"), (to_peer, "bleg"), (to_both, "both")] {
            let me = me(&sim);
            assert_eq!(
                apis(&sim),
                [
                    format!("uuid_broadcast {me} 'speak::flite|rms|you are   on air' {legs}"),
                    said_line(&me, "spoken"),
                ]
            );
        }
    }
}

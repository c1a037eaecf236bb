//! Metaflow `play`: plays media to this leg, the far end, or both, over whatever is going on.
//! API: `uuid_broadcast <uuid> '<path>' aleg|bleg|both` (`aleg` when not bridged; `tts://` media
//! as `'speak::flite|slt|<text>'`); `leg` is seen from whoever pressed the code (the far end's
//! `self` is `bleg`). Children: `_`.

use super::{MetaNext, MetaflowModule, broadcast, leg_from_here};
use crate::engine::call::{Call, CallEnded};
use crate::modules::media;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `play` metaflow module.
pub struct Play;

/// `play` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Media reference.
    pub id: String,
    /// `self`, `peer` or `both`, from the side of whoever pressed the code.
    #[serde(default = "self_leg")]
    pub leg: String,
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
}

fn self_leg() -> String {
    "self".into()
}

impl MetaflowModule for Play {
    const NAME: &'static str = "play";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Play media to one or both legs",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 2048},
                "leg": {"type": "string", "enum": ["self", "peer", "both"], "default": "self"}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let what = media::broadcastable(call, &data.id);
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
    use super::super::testing::{
        apis, me, meta, one_code, run_bridged, run_pressed_by_peer, run_unbridged, said, said_line,
        secs,
    };
    use serde_json::json;

    fn play_to(leg: &str) -> serde_json::Value {
        one_code(
            "1",
            meta(
                "play",
                json!({"id": "/notice.wav", "leg": leg}),
                json!({"_": said("played")}),
            ),
        )
    }

    #[tokio::test]
    async fn plays_to_self_peer_or_both_legs_while_bridged() {
        let (to_self, to_peer, to_both) = tokio::join!(
            run_bridged(play_to("self"), secs(4), "*1@bridge+300ms"),
            run_bridged(play_to("peer"), secs(4), "*1@bridge+300ms"),
            run_bridged(play_to("both"), secs(4), "*1@bridge+300ms"),
        );
        for (sim, legs) in [(to_self, "aleg"), (to_peer, "bleg"), (to_both, "both")] {
            let me = me(&sim);
            assert_eq!(
                apis(&sim),
                [
                    format!("uuid_broadcast {me} '/notice.wav' {legs}"),
                    said_line(&me, "played"),
                ]
            );
        }
    }

    #[tokio::test]
    async fn without_a_peer_plays_to_this_leg() {
        let sim = run_unbridged(play_to("peer"), "*1@playback+300ms").await;
        let me = me(&sim);
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_broadcast {me} '/notice.wav' aleg"),
                said_line(&me, "played"),
            ]
        );
    }

    #[tokio::test]
    async fn tts_media_is_spoken() {
        let metaflow = one_code(
            "1",
            meta("play", json!({"id": "tts://hello there"}), json!({})),
        );
        let sim = run_unbridged(metaflow, "*1@playback+300ms").await;
        assert_eq!(
            apis(&sim),
            [format!(
                "uuid_broadcast {} 'speak::flite|slt|hello there' aleg",
                me(&sim)
            )]
        );
    }

    #[tokio::test]
    async fn legs_are_seen_from_whoever_pressed() {
        // The far end's `self` is `bleg`, its `peer` the caller (`aleg`).
        let (to_self, to_peer, to_both) = tokio::join!(
            run_pressed_by_peer(play_to("self"), "*1", ""),
            run_pressed_by_peer(play_to("peer"), "*1", ""),
            run_pressed_by_peer(play_to("both"), "*1", ""),
        );
        for (sim, legs) in [(to_self, "bleg"), (to_peer, "aleg"), (to_both, "both")] {
            let me = me(&sim);
            // The child inherits who pressed: its `self` is the far end too.
            assert_eq!(
                apis(&sim),
                [
                    format!("uuid_broadcast {me} '/notice.wav' {legs}"),
                    format!("uuid_broadcast {me} 'speak::flite|slt|played' bleg"),
                ]
            );
        }
    }
}

//! Metaflow `hold`: puts the far end on hold with music; pressing `unhold_key` (a single digit,
//! no binding digit) takes it off hold again.
//! API: `uuid_setvar <peer> hold_music <moh_bleg>` (when set), `uuid_hold <peer>`, and
//! `uuid_broadcast <uuid> '<moh_aleg>' aleg` (when set). Unhold: `uuid_hold off <peer>`
//! (+ `uuid_break <uuid>` to stop `moh_aleg`; not `all`, which would flush queued commands).
//! The unhold key is a key only while held and no code is being collected (`*1` stays a code),
//! and is disarmed when the bridge ends. Children: `_`; not bridged -> `no_peer`.

use super::{MetaNext, MetaflowModule, broadcast};
use crate::engine::call::{Call, CallEnded};
use crate::modules::media::{self, Media};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `hold` metaflow module.
pub struct Hold;

/// `hold` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Music for the caller while the peer is held.
    #[serde(default)]
    pub moh_aleg: Option<String>,
    /// Music for the held peer.
    #[serde(default)]
    pub moh_bleg: Option<String>,
    /// The digit that takes the peer off hold.
    #[serde(default = "one")]
    pub unhold_key: String,
}

fn one() -> String {
    "1".into()
}

fn playable(reference: &str) -> String {
    match media::resolve(reference) {
        Media::Playback(path) => path,
        Media::Speak(text) => format!("speak::{}", media::flite_arg("female", &text)),
    }
}

impl MetaflowModule for Hold {
    const NAME: &'static str = "hold";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Put the far end on hold",
            "properties": {
                "moh_aleg": {"type": "string", "minLength": 1, "maxLength": 2048},
                "moh_bleg": {"type": "string", "minLength": 1, "maxLength": 2048},
                "unhold_key": {"type": "string", "pattern": "^[0-9*#]$", "default": "1"}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let Some(peer) = call.peer_uuid().map(str::to_string) else {
            tracing::info!("hold metaflow without a bridged peer");
            return Ok(MetaNext::Continue("no_peer".into()));
        };
        if let Some(moh) = &data.moh_bleg {
            call.api(&format!("uuid_setvar {peer} hold_music {}", playable(moh)))
                .await?;
        }
        call.api(&format!("uuid_hold {peer}")).await?;
        if let Some(moh) = &data.moh_aleg {
            broadcast(call, &playable(moh), "self").await?;
        }
        call.set_unhold_key(data.unhold_key.chars().next());
        Ok(MetaNext::default_child())
    }
}

/// Takes the peer off hold (the `unhold_key`, and `resume`).
pub async fn unhold(call: &mut Call) -> Result<(), CallEnded> {
    call.set_unhold_key(None);
    if let Some(peer) = call.peer_uuid().map(str::to_string) {
        call.api(&format!("uuid_hold off {peer}")).await?;
    }
    let uuid = call.uuid.clone();
    call.api(&format!("uuid_break {uuid}")).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        apis, me, meta, one_code, peer, run_bridged, run_unbridged, said, said_line, secs,
    };
    use serde_json::json;

    #[tokio::test]
    async fn star4_holds_with_music_and_the_unhold_key_unholds() {
        let metaflow = one_code(
            "4",
            meta(
                "hold",
                json!({"moh_aleg": "/moh/caller.wav", "moh_bleg": "/moh/peer.wav", "unhold_key": "1"}),
                json!({"_": said("held")}),
            ),
        );
        // `1` before the hold is nobody's key; `1` after it unholds.
        let digits = "1@bridge+200ms,*4@bridge+300ms,1@bridge+3s";
        let sim = run_bridged(metaflow, secs(5), digits).await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_setvar {peer} hold_music /moh/peer.wav"),
                format!("uuid_hold {peer}"),
                format!("uuid_broadcast {me} '/moh/caller.wav' aleg"),
                said_line(&me, "held"),
                format!("uuid_hold off {peer}"),
                format!("uuid_break {me}"),
            ]
        );
    }

    #[tokio::test]
    async fn the_unhold_key_inside_a_code_belongs_to_the_code() {
        // Held with unhold key 1; `*1` is a code (armed by `*`), not an unhold.
        let metaflow = json!({"digit_timeout": 1200, "numbers": {
            "4": meta("hold", json!({"unhold_key": "1"}), json!({})),
            "1": said("one"),
        }});
        let sim = run_bridged(metaflow, secs(5), "*4@bridge+300ms,*1@bridge+2800ms").await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [format!("uuid_hold {peer}"), said_line(&me, "one")]
        );
    }

    #[tokio::test]
    async fn without_a_peer_takes_the_no_peer_child() {
        let metaflow = one_code(
            "4",
            meta(
                "hold",
                json!({}),
                json!({"no_peer": said("alone"), "_": said("default")}),
            ),
        );
        let sim = run_unbridged(metaflow, "*4@playback+300ms").await;
        assert_eq!(apis(&sim), [said_line(&me(&sim), "alone")]);
    }
}

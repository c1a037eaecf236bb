//! Metaflow `hold`: the party who pressed the code puts the other one on hold with music
//! (Kazoo's `dtmf_leg` rule: the caller holds the far end, the far end holds the caller);
//! pressing `unhold_key` (a single digit, no binding digit) takes it off hold again.
//! API: `uuid_setvar <held> hold_music <moh_bleg>` (when set), `uuid_hold <held>`, and
//! `uuid_broadcast <uuid> '<moh_aleg>' aleg|bleg` (when set: music for the presser, `bleg` when
//! the far end pressed). Unhold: `uuid_hold off <held>` (+ `uuid_break <presser>` to stop
//! `moh_aleg`; not `all`, which would flush queued commands).
//! The unhold key is the caller's: armed only when the caller pressed the hold, a key only while
//! held and no code is being collected (`*1` stays a code), disarmed when the bridge ends; a
//! hold by the far end is undone with `resume`. Children: `_`; not bridged -> `no_peer`.

use super::{MetaNext, MetaflowModule, Parties, broadcast, leg_from_here, parties};
use crate::engine::call::{Call, CallEnded};
use crate::modules::media;
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
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
}

/// Kvs key of the current hold: `{"held": <uuid>, "presser": <uuid>}`.
const HELD: &str = "metaflow_hold";

fn one() -> String {
    "1".into()
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
        let dtmf_leg = data.dtmf_leg.as_deref();
        let Parties {
            presser,
            other: Some(held),
        } = parties(call, dtmf_leg)
        else {
            tracing::info!("hold metaflow without a bridged peer");
            return Ok(MetaNext::Continue("no_peer".into()));
        };
        if let Some(moh) = &data.moh_bleg {
            call.api(&format!(
                "uuid_setvar {held} hold_music {}",
                media::broadcastable(call, moh)
            ))
            .await?;
        }
        call.api(&format!("uuid_hold {held}")).await?;
        if let Some(moh) = &data.moh_aleg {
            broadcast(
                call,
                &media::broadcastable(call, moh),
                leg_from_here("self", dtmf_leg),
            )
            .await?;
        }
        call.kvs
            .insert(HELD.into(), json!({"held": held, "presser": presser}));
        if presser.as_deref() == Some(call.uuid.as_str()) {
            call.set_unhold_key(data.unhold_key.chars().next());
        }
        Ok(MetaNext::default_child())
    }
}

/// Takes the held party off hold (the `unhold_key`, and `resume`): the one `hold` held, else
/// the far end; then stops the presser's music (this leg's when unknown).
pub async fn unhold(call: &mut Call) -> Result<(), CallEnded> {
    call.set_unhold_key(None);
    let hold = call.kvs.remove(HELD);
    let field = |key: &str| {
        hold.as_ref()
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(held) = field("held").or_else(|| call.peer_uuid().map(str::to_string)) {
        call.api(&format!("uuid_hold off {held}")).await?;
    }
    let presser = field("presser").unwrap_or_else(|| call.uuid.clone());
    call.api(&format!("uuid_break {presser}")).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        apis, bridge_flow, bridged_call, me, meta, one_code, peer, peer_presses, run_bridged,
        run_unbridged, said, said_line, secs, store,
    };
    use crate::engine::testkit::run_with_store;
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

    #[tokio::test]
    async fn pressed_by_the_far_end_holds_the_caller_until_resume() {
        // The far end holds the caller (music to the far end on `bleg`); the caller's `1` is
        // no unhold key; the far end's `*8` (resume) unholds.
        let metaflow = json!({"digit_timeout": 1200, "listen_on": "peer", "numbers": {
            "4": meta("hold", json!({"moh_aleg": "/moh/presser.wav", "moh_bleg": "/moh/held.wav"}), json!({})),
            "8": meta("resume", json!({}), json!({})),
        }});
        let script = peer_presses(
            peer_presses(bridged_call(secs(5), "1@bridge+1500ms"), "*4", ms(500)),
            "*8",
            ms(2500),
        );
        let sim = run_with_store(store(bridge_flow(json!({})), metaflow), script).await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_setvar {me} hold_music /moh/held.wav"),
                format!("uuid_hold {me}"),
                format!("uuid_broadcast {me} '/moh/presser.wav' bleg"),
                format!("uuid_hold off {me}"),
                format!("uuid_break {peer}"),
            ]
        );
    }

    fn ms(n: u64) -> std::time::Duration {
        std::time::Duration::from_millis(n)
    }
}

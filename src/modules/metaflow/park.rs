//! Metaflow `park` (Kazoo has none): whoever pressed the code parks the other party in the
//! account's valet lot and is told the slot, so anyone can pick the call up from `*3<slot>`:
//! the caller parks the far end, or the far end (`listen_on` peer/both) parks the caller.
//!
//! API: `valet_info <lot>` (occupied slots), `uuid_transfer <parked> 'valet_park:<lot> <slot>'
//! inline`, then `uuid_broadcast <presser> 'say::<language> number iterated <slot>' aleg`. When
//! the caller is the one parked, this call leaves callflowd (the executor ends without hanging
//! up, the metaflow's children do not run) and the announcement to the far end is best effort
//! (its leg may end with the bridge).
//! Slot: the first free one from `first_slot` to `max_slot_number`. Children: `_`; not bridged
//! -> `no_peer`; lot full -> `full`.

use super::{MetaNext, MetaflowModule, Parties, parties};
use crate::engine::call::{Call, CallEnded};
use crate::modules::park::{lot, occupied_slots};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `park` metaflow module.
pub struct Park;

/// `park` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Lowest slot.
    #[serde(default = "first")]
    pub first_slot: u32,
    /// Highest slot.
    #[serde(default = "last")]
    pub max_slot_number: u32,
    /// Language of the slot announcement.
    #[serde(default = "en")]
    pub language: String,
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
}

fn first() -> u32 {
    101
}
fn last() -> u32 {
    199
}
fn en() -> String {
    "en".into()
}

impl MetaflowModule for Park {
    const NAME: &'static str = "park";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Park the far end and announce the slot",
            "properties": {
                "first_slot": {"type": "integer", "minimum": 1, "maximum": 999999, "default": 101},
                "max_slot_number": {"type": "integer", "minimum": 1, "maximum": 999999, "default": 199},
                "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Za-z]{2})?$", "default": "en"}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let Parties {
            presser,
            other: Some(parked),
        } = parties(call, data.dtmf_leg.as_deref())
        else {
            return Ok(MetaNext::Continue("no_peer".into()));
        };
        let lot = lot(&call.account_id);
        let info = call.api(&format!("valet_info {lot}")).await?;
        let occupied = occupied_slots(&info);
        let Some(slot) =
            (data.first_slot..=data.max_slot_number).find(|s| !occupied.contains(&s.to_string()))
        else {
            return Ok(MetaNext::Continue("full".into()));
        };
        call.api(&format!(
            "uuid_transfer {parked} 'valet_park:{lot} {slot}' inline"
        ))
        .await?;
        if let Some(presser) = presser {
            call.api(&format!(
                "uuid_broadcast {presser} 'say::{} number iterated {slot}' aleg",
                data.language
            ))
            .await?;
        }
        if parked == call.uuid {
            call.mark_transferred();
        }
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        apis, me, meta, one_code, peer, run_bridged, run_pressed_by_peer, run_unbridged, said,
        said_line, secs,
    };
    use crate::engine::executor::FlowEnd;
    use crate::engine::session::SessionEnd;
    use crate::engine::testkit::ACCOUNT;
    use serde_json::json;

    #[tokio::test]
    async fn parks_the_peer_in_the_first_free_slot_and_announces_it() {
        let metaflow = one_code(
            "7",
            meta(
                "park",
                json!({"first_slot": 301, "max_slot_number": 310, "language": "de"}),
                json!({"_": said("parked"), "full": said("full")}),
            ),
        );
        let sim = run_bridged(metaflow, secs(4), "*7@bridge+300ms").await;
        let (me, peer) = (me(&sim), peer(&sim));
        let lot = format!("callflowd_{ACCOUNT}");
        assert_eq!(
            apis(&sim),
            [
                format!("valet_info {lot}"),
                format!("uuid_transfer {peer} 'valet_park:{lot} 301' inline"),
                format!("uuid_broadcast {me} 'say::de number iterated 301' aleg"),
                said_line(&me, "parked"),
            ]
        );
        // The fake's lot is empty: its valet_info reply was read as such.
        let reply = sim
            .transcript
            .commands
            .iter()
            .find(|c| c.line.starts_with("api valet_info"))
            .and_then(|c| c.reply.clone())
            .unwrap_or_default();
        assert!(reply.contains("<lots>"), "{reply}");
    }

    #[tokio::test]
    async fn without_a_peer_takes_the_no_peer_child() {
        let metaflow = one_code(
            "7",
            meta("park", json!({}), json!({"no_peer": said("alone")})),
        );
        let sim = run_unbridged(metaflow, "*7@playback+300ms").await;
        assert_eq!(apis(&sim), [said_line(&me(&sim), "alone")]);
    }

    #[tokio::test]
    async fn pressed_by_the_far_end_parks_the_caller_and_the_call_leaves() {
        let metaflow = one_code("7", meta("park", json!({}), json!({"_": said("parked")})));
        let sim = run_pressed_by_peer(metaflow, "*7", "").await;
        let (me, peer) = (me(&sim), peer(&sim));
        let lot = format!("callflowd_{ACCOUNT}");
        assert_eq!(
            apis(&sim),
            [
                format!("valet_info {lot}"),
                format!("uuid_transfer {me} 'valet_park:{lot} 101' inline"),
                format!("uuid_broadcast {peer} 'say::en number iterated 101' aleg"),
            ]
        );
        assert_eq!(sim.report.end, SessionEnd::Flow(FlowEnd::Released));
    }
}

//! `park`: call parking by slot number, built on FreeSWITCH's `valet_park` with one lot per
//! account (`callflowd_<account_id>`), so an attendant can park a caller and anyone can pick the
//! call up again by dialling the slot.
//!
//! Slot: `slot` from data, else the route's capture group (`*3101` -> `101`), else (park/auto)
//! the first free slot from 101 to `max_slot_number`, announced to the caller by valet_park.
//! Occupancy is read with `api valet_info <lot>`.
//! ESL: `api valet_info <lot>`; then
//! - park: `execute set valet_parking_timeout=<secs>` (when a ringback timeout is set), then
//!   `execute valet_park <lot> <slot>` or `execute valet_park <lot> auto in 101 <max>`;
//! - retrieve: `execute valet_park <lot> <slot>` on an occupied slot (bridges to the parked call);
//!   an empty slot plays `empty_slot_media` and stops;
//! - auto: retrieve when the slot is occupied, else park.
//!
//! valet_park returns when the parked/retrieved call ends; the flow then stops.
//! Children: `_` when no slot can be determined for a retrieve.

use super::media;
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The `park` module.
pub struct Park;

/// `park` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `park`, `retrieve` or `auto`.
    #[serde(default = "park")]
    pub action: String,
    /// Slot number.
    #[serde(default)]
    pub slot: Option<String>,
    /// Highest slot for automatic allocation.
    #[serde(default = "max_slot")]
    pub max_slot_number: u32,
    /// After this many ms a parked call is sent to `orbit_extension` (when set).
    #[serde(default)]
    pub default_ringback_timeout: Option<u64>,
    /// Extension a timed-out parked call is transferred to.
    #[serde(default)]
    pub orbit_extension: Option<String>,
    /// Played to someone retrieving an empty slot.
    #[serde(default = "reorder")]
    pub empty_slot_media: String,
}

fn park() -> String {
    "park".into()
}
fn max_slot() -> u32 {
    199
}
fn reorder() -> String {
    "tone_stream://%(250,250,480,620);loops=3".into()
}

/// The valet lot of an account.
pub fn lot(account_id: &str) -> String {
    format!("callflowd_{account_id}")
}

/// Slot numbers listed as occupied in a `valet_info` reply
/// (`<extension uuid="...">101</extension>` elements).
pub fn occupied_slots(valet_info: &str) -> BTreeSet<String> {
    let mut slots = BTreeSet::new();
    let mut rest = valet_info;
    while let Some(start) = rest.find("<extension") {
        rest = &rest[start..];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let after = &rest[open_end + 1..];
        let Some(close) = after.find("</extension>") else {
            break;
        };
        let slot = after[..close].trim();
        if !slot.is_empty() {
            slots.insert(slot.to_string());
        }
        rest = &after[close..];
    }
    slots
}

impl CallflowModule for Park {
    const NAME: &'static str = "park";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Park, retrieve or auto-park a call in a numbered slot",
            "properties": {
                "action": {"type": "string", "enum": ["park", "retrieve", "auto"], "default": "park"},
                "slot": {"type": "string", "pattern": "^[0-9]{1,6}$"},
                "max_slot_number": {"type": "integer", "minimum": 101, "maximum": 999999, "default": 199},
                "default_ringback_timeout": {"type": "integer", "minimum": 1000, "maximum": 86400000},
                "orbit_extension": {"type": "string", "pattern": "^[A-Za-z0-9_+*#\\-]{1,64}$"},
                "empty_slot_media": {"type": "string", "minLength": 1, "maxLength": 2048,
                                     "default": "tone_stream://%(250,250,480,620);loops=3"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let lot = lot(&call.account_id);
        let slot = data.slot.clone().or_else(|| {
            call.kvs
                .get("capture_group")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        });
        let info = call.api(&format!("valet_info {lot}")).await?;
        let occupied = occupied_slots(&info);
        let slot_taken = slot.as_ref().is_some_and(|s| occupied.contains(s));
        let retrieve = match data.action.as_str() {
            "retrieve" => true,
            "auto" => slot_taken,
            _ => false,
        };
        if retrieve {
            let Some(slot) = slot else {
                tracing::warn!("park retrieve without a slot; continuing");
                return Ok(Next::default_child());
            };
            if !slot_taken {
                tracing::info!(%slot, "no call parked in this slot");
                media::play(call, &data.empty_slot_media).await?;
                return Ok(Next::Stop);
            }
            call.execute_long("valet_park", &format!("{lot} {slot}"))
                .await?;
            return Ok(Next::Stop);
        }
        if let Some(timeout) = data.default_ringback_timeout {
            call.set_var(
                "valet_parking_timeout",
                &(timeout / 1000).max(1).to_string(),
            )
            .await?;
            if let Some(orbit) = &data.orbit_extension {
                call.set_var("valet_parking_orbit_exten", orbit).await?;
            }
        }
        let arg = match slot.filter(|s| !occupied.contains(s)) {
            Some(slot) => format!("{lot} {slot}"),
            None => format!("{lot} auto in 101 {}", data.max_slot_number),
        };
        call.execute_long("valet_park", &arg).await?;
        Ok(Next::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use crate::fakeswitch::CallScript;
    use std::time::Duration;

    /// `*3<slot>` runs `park` with `data`; `_` is a marker.
    fn store(data: Value) -> std::sync::Arc<crate::store::memory::MemStore> {
        let store = store_with_flow(json!({}));
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000a00",
            json!({"patterns": ["^\\*3(\\d*)$"], "flow": validated(node(
                "park", data, json!({"_": marker("after", json!({}))}),
            ))}),
        );
        store
    }

    fn dial(number: &str) -> CallScript {
        CallScript::new(number)
            .account(Some(ACCOUNT))
            .hangup_after(Duration::from_millis(800))
    }

    fn lot_name() -> String {
        lot(ACCOUNT)
    }

    #[test]
    fn parses_valet_info() {
        let xml = "<lot name=\"callflowd_x\">\n  <extension uuid=\"a\">101</extension>\n  <extension uuid=\"b\">105</extension>\n</lot>";
        let slots = occupied_slots(xml);
        assert!(slots.contains("101") && slots.contains("105") && slots.len() == 2);
        assert!(occupied_slots("-ERR").is_empty());
        assert!(occupied_slots("<extension uuid=\"a\">10").is_empty());
    }

    #[tokio::test]
    async fn parks_in_the_slot_from_the_capture_group_until_hangup() {
        let sim = run_with_store(store(json!({})), dial("*3101")).await;
        let lot = lot_name();
        assert!(
            sim.transcript
                .command_lines()
                .contains(&format!("api valet_info {lot}")),
            "{:?}",
            sim.transcript.command_lines()
        );
        assert_eq!(apps(&sim), [format!("valet_park {lot} 101")]);
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert!(markers(&sim).is_empty());
    }

    #[tokio::test]
    async fn without_a_slot_the_first_free_one_is_taken() {
        let sim = run_with_store(store(json!({"max_slot_number": 150})), dial("*3")).await;
        assert_eq!(
            apps(&sim),
            [format!("valet_park {} auto in 101 150", lot_name())]
        );
    }

    #[tokio::test]
    async fn ringback_timeout_and_orbit() {
        let data =
            json!({"slot": "105", "default_ringback_timeout": 60000, "orbit_extension": "1000"});
        let sim = run_with_store(store(data), dial("*3")).await;
        assert_eq!(
            apps(&sim),
            [
                "set valet_parking_timeout=60".to_string(),
                "set valet_parking_orbit_exten=1000".to_string(),
                format!("valet_park {} 105", lot_name())
            ]
        );
    }

    #[tokio::test]
    async fn the_flow_stops_when_the_parked_call_comes_back() {
        let script = CallScript::new("*3101")
            .account(Some(ACCOUNT))
            .app_duration("valet_park", Duration::from_millis(300));
        let sim = run_with_store(store(json!({})), script).await;
        assert_eq!(branches(&sim), ["stop"]);
        assert!(markers(&sim).is_empty());
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn retrieving_an_empty_slot_plays_the_reorder_tone_and_stops() {
        let script = CallScript::new("*3101").account(Some(ACCOUNT));
        let sim = run_with_store(store(json!({"action": "retrieve"})), script).await;
        assert_eq!(
            apps(&sim),
            ["playback tone_stream://%(250,250,480,620);loops=3"]
        );
        assert_eq!(branches(&sim), ["stop"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn retrieving_without_a_slot_takes_the_default_child() {
        let script = CallScript::new("*3").account(Some(ACCOUNT));
        let sim = run_with_store(store(json!({"action": "retrieve"})), script).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(branches(&sim)[0], "_");
    }
}

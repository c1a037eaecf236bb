//! Metaflow `hold_control`: hold, unhold or toggle the other party (of whoever pressed the code:
//! the far end when the caller pressed, the caller when the far end did) without music settings.
//! API: `uuid_hold <other>`, `uuid_hold off <other>`, `uuid_hold toggle <other>`.
//! Children: `_`; not bridged -> `no_peer`.

use super::{MetaNext, MetaflowModule, parties};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `hold_control` metaflow module.
pub struct HoldControl;

/// `hold_control` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `hold`, `unhold` or `toggle`.
    #[serde(default = "toggle")]
    pub action: String,
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
}

fn toggle() -> String {
    "toggle".into()
}

impl MetaflowModule for HoldControl {
    const NAME: &'static str = "hold_control";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Hold, unhold or toggle hold of the far end",
            "properties": {"action": {"type": "string", "enum": ["hold", "unhold", "toggle"], "default": "toggle"}}
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let Some(other) = parties(call, data.dtmf_leg.as_deref()).other else {
            return Ok(MetaNext::Continue("no_peer".into()));
        };
        let command = match data.action.as_str() {
            "hold" => format!("uuid_hold {other}"),
            "unhold" => format!("uuid_hold off {other}"),
            _ => format!("uuid_hold toggle {other}"),
        };
        call.api(&command).await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        apis, me, meta, peer, run_bridged, run_pressed_by_peer, run_unbridged, said, said_line,
        secs,
    };
    use serde_json::json;

    #[tokio::test]
    async fn toggle_hold_and_unhold() {
        let metaflow = json!({"digit_timeout": 1200, "numbers": {
            "5": meta("hold_control", json!({}), json!({"_": said("toggled")})),
            "6": meta("hold_control", json!({"action": "hold"}), json!({})),
            "7": meta("hold_control", json!({"action": "unhold"}), json!({})),
        }});
        let digits = "*5@bridge+300ms,*6@bridge+3s,*7@bridge+5700ms";
        let sim = run_bridged(metaflow, secs(9), digits).await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_hold toggle {peer}"),
                said_line(&me, "toggled"),
                format!("uuid_hold {peer}"),
                format!("uuid_hold off {peer}"),
            ]
        );
    }

    #[tokio::test]
    async fn without_a_peer_takes_the_no_peer_child() {
        let metaflow = json!({"digit_timeout": 1200, "numbers": {"5": meta(
            "hold_control",
            json!({"action": "toggle"}),
            json!({"no_peer": said("alone"), "_": said("default")}),
        )}});
        let sim = run_unbridged(metaflow, "*5@playback+300ms").await;
        assert_eq!(apis(&sim), [said_line(&me(&sim), "alone")]);
    }

    #[tokio::test]
    async fn pressed_by_the_far_end_acts_on_the_caller() {
        let metaflow = json!({"digit_timeout": 1200, "numbers": {
            "5": meta("hold_control", json!({}), json!({})),
        }});
        let sim = run_pressed_by_peer(metaflow, "*5", "").await;
        assert_eq!(apis(&sim), [format!("uuid_hold toggle {}", me(&sim))]);
    }
}

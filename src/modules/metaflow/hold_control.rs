//! Metaflow `hold_control`: hold, unhold or toggle the far end without music settings.
//! API: `uuid_hold <peer>`, `uuid_hold off <peer>`, `uuid_hold toggle <peer>`.
//! Children: `_`; not bridged -> `no_peer`.

use super::{MetaNext, MetaflowModule};
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
        let Some(peer) = call.peer_uuid().map(str::to_string) else {
            return Ok(MetaNext::Continue("no_peer".into()));
        };
        let command = match data.action.as_str() {
            "hold" => format!("uuid_hold {peer}"),
            "unhold" => format!("uuid_hold off {peer}"),
            _ => format!("uuid_hold toggle {peer}"),
        };
        call.api(&command).await?;
        Ok(MetaNext::default_child())
    }
}

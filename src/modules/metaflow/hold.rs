//! Metaflow `hold`: puts the far end on hold with music; pressing `unhold_key` (a single digit,
//! no binding digit) takes it off hold again.
//! API: `uuid_setvar <peer> hold_music <moh_bleg>` (when set), `uuid_hold <peer>`, and
//! `uuid_broadcast <uuid> '<moh_aleg>' aleg` (when set). Unhold: `uuid_hold off <peer>`
//! (+ `uuid_break <uuid> all` to stop `moh_aleg`). Children: `_`; not bridged -> `no_peer`.

use super::{MetaNext, MetaflowModule, broadcast};
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
}

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
        let Some(peer) = call.peer_uuid().map(str::to_string) else {
            tracing::info!("hold metaflow without a bridged peer");
            return Ok(MetaNext::Continue("no_peer".into()));
        };
        if let Some(moh) = &data.moh_bleg {
            call.api(&format!(
                "uuid_setvar {peer} hold_music {}",
                media::broadcastable(call, moh)
            ))
            .await?;
        }
        call.api(&format!("uuid_hold {peer}")).await?;
        if let Some(moh) = &data.moh_aleg {
            broadcast(call, &media::broadcastable(call, moh), "self").await?;
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
    call.api(&format!("uuid_break {uuid} all")).await?;
    Ok(())
}

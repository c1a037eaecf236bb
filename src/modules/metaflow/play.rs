//! Metaflow `play`: plays media to this leg, the far end, or both, over whatever is going on.
//! API: `uuid_broadcast <uuid> '<path>' aleg|bleg|both`. Children: `_`.

use super::{MetaNext, MetaflowModule, broadcast};
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
    /// `self`, `peer` or `both`.
    #[serde(default = "self_leg")]
    pub leg: String,
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
        broadcast(call, &what, &data.leg).await?;
        Ok(MetaNext::default_child())
    }
}

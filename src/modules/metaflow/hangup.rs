//! Metaflow `hangup`: ends the conversation with the far end — the peer is hung up and the caller
//! returns to the callflow (a bridge ends); without a peer, the caller's own leg is hung up.
//! API: `uuid_kill <peer|uuid>`. Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `hangup` metaflow module.
pub struct Hangup;

/// No arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl MetaflowModule for Hangup {
    const NAME: &'static str = "hangup";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Hang up the far end (or this leg when not bridged)", "properties": {}})
    }

    async fn run(_data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let target = call
            .peer_uuid()
            .map(str::to_string)
            .unwrap_or_else(|| call.uuid.clone());
        call.api(&format!("uuid_kill {target}")).await?;
        Ok(MetaNext::default_child())
    }
}

//! Metaflow `resume`: reconnects the caller with a held far end (cancelling a `hold`).
//! API: `uuid_hold off <peer>`, `uuid_break <uuid> all`. Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `resume` metaflow module.
pub struct Resume;

/// No arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl MetaflowModule for Resume {
    const NAME: &'static str = "resume";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Reconnect with the held party", "properties": {}})
    }

    async fn run(_data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        super::hold::unhold(call).await?;
        Ok(MetaNext::default_child())
    }
}

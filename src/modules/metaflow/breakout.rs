//! Metaflow `break`: stops what the caller is hearing (a long prompt, hold music) so the main flow
//! moves on. API: `uuid_break <uuid> all`. Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `break` metaflow module.
pub struct Break;

/// No arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl MetaflowModule for Break {
    const NAME: &'static str = "break";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Stop the media playing on this leg", "properties": {}})
    }

    async fn run(_data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let uuid = call.uuid.clone();
        call.api(&format!("uuid_break {uuid} all")).await?;
        Ok(MetaNext::default_child())
    }
}

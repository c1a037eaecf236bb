//! Metaflow `callflow`: runs a callflow on this leg in the middle of the call — by `id`, or the
//! one the code's digits route to (`*7` + `1234` with pattern `^7(\d+)$`). What is going on is
//! interrupted: media stops (`uuid_break <uuid> all`) and a bridge ends (`uuid_kill <peer>`);
//! then the executor branches to the callflow, and when it stops the main flow resumes after the
//! interrupted step. Children: `_`; nothing to run -> `no_callflow`.

use super::{MetaNext, MetaflowModule, first_capture};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `callflow` metaflow module.
pub struct Callflow;

/// `callflow` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Callflow id.
    #[serde(default)]
    pub id: Option<String>,
    /// Captures of the triggering pattern.
    #[serde(default)]
    pub captures: Vec<String>,
    /// The code.
    #[serde(default)]
    pub collected: Option<String>,
}

impl MetaflowModule for Callflow {
    const NAME: &'static str = "callflow";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Run a callflow (by id or by the dialled digits) on this leg",
            "properties": {"id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let id = match data.id {
            Some(id) => Some(id),
            None => first_capture(&data.captures, &data.collected).and_then(|number| {
                call.ctx
                    .store
                    .routing()
                    .lookup(&call.account_id, &number)
                    .map(|route| route.callflow_id.to_string())
            }),
        };
        let Some(flow) = id
            .as_deref()
            .and_then(|id| crate::modules::callflow::load(call, id))
        else {
            return Ok(MetaNext::Continue("no_callflow".into()));
        };
        call.request_branch(flow);
        let uuid = call.uuid.clone();
        if let Some(peer) = call.peer_uuid().map(str::to_string) {
            call.api(&format!("uuid_kill {peer}")).await?;
        }
        call.api(&format!("uuid_break {uuid} all")).await?;
        Ok(MetaNext::default_child())
    }
}

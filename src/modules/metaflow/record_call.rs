//! Metaflow `record_call`: starts, stops or toggles recording the call on demand.
//! API: `uuid_record <uuid> start <path> <time_limit>` / `uuid_record <uuid> stop <path>`; the
//! path follows the callflow module's naming (`${recordings_dir}/<account>_<uuid>_<unix>.<fmt>`).
//! Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `record_call` metaflow module.
pub struct RecordCall;

/// `record_call` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `start`, `stop` or `toggle`.
    #[serde(default = "toggle")]
    pub action: String,
    /// `wav` or `mp3`.
    #[serde(default = "wav")]
    pub format: String,
    /// Seconds before the recording stops by itself.
    #[serde(default = "hour")]
    pub time_limit: u32,
}

fn toggle() -> String {
    "toggle".into()
}
fn wav() -> String {
    "wav".into()
}
fn hour() -> u32 {
    3600
}

/// Kvs key of a metaflow-started recording.
const KEY: &str = "metaflow_recording_path";

impl MetaflowModule for RecordCall {
    const NAME: &'static str = "record_call";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Start, stop or toggle call recording",
            "properties": {
                "action": {"type": "string", "enum": ["start", "stop", "toggle"], "default": "toggle"},
                "format": {"type": "string", "enum": ["wav", "mp3"], "default": "wav"},
                "time_limit": {"type": "integer", "minimum": 5, "maximum": 10800, "default": 3600}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let recording = call
            .kvs
            .get(KEY)
            .and_then(Value::as_str)
            .map(str::to_string);
        let start = match data.action.as_str() {
            "start" => true,
            "stop" => false,
            _ => recording.is_none(),
        };
        let uuid = call.uuid.clone();
        if start {
            if recording.is_some() {
                return Ok(MetaNext::default_child());
            }
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let path = format!(
                "${{recordings_dir}}/{}_{uuid}_{stamp}.{}",
                call.account_id, data.format
            );
            call.api(&format!(
                "uuid_record {uuid} start {path} {}",
                data.time_limit
            ))
            .await?;
            call.kvs.insert(KEY.into(), Value::String(path));
        } else if let Some(path) = recording {
            call.api(&format!("uuid_record {uuid} stop {path}")).await?;
            call.kvs.remove(KEY);
        }
        Ok(MetaNext::default_child())
    }
}

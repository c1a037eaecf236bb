//! `record_call`: starts or stops recording the call to a file on the FreeSWITCH host.
//!
//! ESL (start): `execute set record_sample_rate=<rate>` / `record_min_sec=<n>` when given, then
//! `execute record_session <path> +<time_limit>`; with `record_on_answer` on an unanswered
//! channel, `execute set execute_on_answer=record_session <path> +<time_limit>` instead.
//! ESL (stop): `execute stop_record_session <path>` (the path this call started, else `all`).
//! File naming: `${recordings_dir}/<account_id>_<media_name or call-uuid_unix-time>.<format>`;
//! FreeSWITCH expands `${recordings_dir}`. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `record_call` module.
pub struct RecordCall;

/// `record_call` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `start` or `stop`.
    pub action: String,
    /// `wav` or `mp3`.
    #[serde(default = "wav")]
    pub format: String,
    /// Seconds before the recording stops by itself.
    #[serde(default = "hour")]
    pub time_limit: u32,
    /// Start when the call is answered rather than now.
    #[serde(default)]
    pub record_on_answer: bool,
    /// Recordings shorter than this are discarded by FreeSWITCH.
    #[serde(default)]
    pub record_min_sec: Option<u32>,
    /// Sample rate of the file.
    #[serde(default)]
    pub record_sample_rate: Option<u32>,
    /// File name (without extension).
    #[serde(default)]
    pub media_name: Option<String>,
}

fn wav() -> String {
    "wav".into()
}
fn hour() -> u32 {
    3600
}

/// Kvs key holding the active recording's path.
pub const RECORDING_KEY: &str = "recording_path";

/// The file a recording of this call goes to.
pub fn recording_path(call: &Call, data: &Data) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let name = data
        .media_name
        .clone()
        .unwrap_or_else(|| format!("{}_{stamp}", call.uuid));
    format!(
        "${{recordings_dir}}/{}_{name}.{}",
        call.account_id, data.format
    )
}

impl CallflowModule for RecordCall {
    const NAME: &'static str = "record_call";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Start or stop recording the call",
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": ["start", "stop"]},
                "format": {"type": "string", "enum": ["wav", "mp3"], "default": "wav"},
                "time_limit": {"type": "integer", "minimum": 5, "maximum": 10800, "default": 3600},
                "record_on_answer": {"type": "boolean", "default": false},
                "record_min_sec": {"type": "integer", "minimum": 0, "maximum": 3600},
                "record_sample_rate": {"type": "integer", "enum": [8000, 16000, 32000, 44100, 48000]},
                "media_name": {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,128}$"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        if data.action == "stop" {
            let path = call
                .kvs
                .remove(RECORDING_KEY)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "all".into());
            call.execute("stop_record_session", &path).await?;
            return Ok(Next::default_child());
        }
        if let Some(rate) = data.record_sample_rate {
            call.set_var("record_sample_rate", &rate.to_string())
                .await?;
        }
        if let Some(min) = data.record_min_sec {
            call.set_var("record_min_sec", &min.to_string()).await?;
        }
        let path = recording_path(call, &data);
        let arg = format!("{path} +{}", data.time_limit);
        if data.record_on_answer && !call.is_answered() {
            call.set_var("execute_on_answer", &format!("record_session {arg}"))
                .await?;
        } else {
            call.execute("record_session", &arg).await?;
        }
        call.kvs.insert(RECORDING_KEY.into(), Value::String(path));
        Ok(Next::default_child())
    }
}

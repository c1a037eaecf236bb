//! Metaflow `record_call`: starts, stops or toggles recording the call on demand.
//! API: `uuid_record <uuid> start <path> <time_limit>` / `uuid_record <uuid> stop <path>`; the
//! path follows the callflow module's naming (`${recordings_dir}/<account>_<uuid>_<unix>.<fmt>`)
//! and is kept for the stop. `start` while recording and `stop` while not send nothing; `toggle`
//! (default) does whichever applies. Children: `_`.

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

#[cfg(test)]
mod tests {
    use super::super::testing::{apis, me, meta, run_bridged, said, said_line, secs};
    use crate::engine::testkit::ACCOUNT;
    use serde_json::json;

    /// `(action, path, rest)` of a `uuid_record <me> <action> <path> [rest]` line.
    fn record_parts(line: &str, me: &str) -> (String, String, String) {
        let rest = line
            .strip_prefix(&format!("uuid_record {me} "))
            .unwrap_or_else(|| panic!("not a uuid_record of this call: {line}"));
        let mut parts = rest.splitn(3, ' ');
        let action = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let tail = parts.next().unwrap_or_default().to_string();
        (action, path, tail)
    }

    #[tokio::test]
    async fn toggle_starts_then_stops_the_same_recording() {
        let metaflow = json!({"digit_timeout": 1200, "numbers": {"9": meta(
            "record_call",
            json!({"action": "toggle", "format": "mp3", "time_limit": 600}),
            json!({"_": said("ok")}),
        )}});
        let sim = run_bridged(metaflow, secs(6), "*9@bridge+300ms,*9@bridge+3s").await;
        let me = me(&sim);
        let apis = apis(&sim);
        assert_eq!(apis.len(), 4, "{apis:?}");
        let (action, path, limit) = record_parts(&apis[0], &me);
        assert_eq!((action.as_str(), limit.as_str()), ("start", "600"));
        let prefix = format!("${{recordings_dir}}/{ACCOUNT}_{me}_");
        assert!(
            path.starts_with(&prefix) && path.ends_with(".mp3"),
            "{path}"
        );
        assert_eq!(apis[1], said_line(&me, "ok"));
        assert_eq!(
            record_parts(&apis[2], &me),
            ("stop".to_string(), path, String::new())
        );
        assert_eq!(apis[3], said_line(&me, "ok"));
    }

    #[tokio::test]
    async fn start_is_idempotent_and_stop_needs_a_recording() {
        let metaflow = json!({"digit_timeout": 1200, "numbers": {
            "1": meta("record_call", json!({"action": "start"}), json!({})),
            "2": meta("record_call", json!({"action": "stop"}), json!({})),
        }});
        // stop (nothing recording), start, start again, stop.
        let digits = "*2@bridge+300ms,*1@bridge+3s,*1@bridge+5700ms,*2@bridge+8400ms";
        let sim = run_bridged(metaflow, secs(12), digits).await;
        let me = me(&sim);
        let apis = apis(&sim);
        assert_eq!(apis.len(), 2, "{apis:?}");
        let (action, path, limit) = record_parts(&apis[0], &me);
        assert_eq!((action.as_str(), limit.as_str()), ("start", "3600"));
        assert!(path.ends_with(".wav"), "{path}");
        assert_eq!(
            record_parts(&apis[1], &me),
            ("stop".to_string(), path, String::new())
        );
    }
}

//! `sleep`: pauses the flow (a timer in callflowd, not a FreeSWITCH app, as in Kazoo).
//!
//! ESL: none; events keep being drained. Capped at 24 h. Children: `_`; a hangup ends the flow.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The `sleep` module.
pub struct Sleep;

/// `sleep` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// How long, in `unit`s.
    #[serde(default)]
    pub duration: u64,
    /// `ms`, `s`, `m` or `h`.
    #[serde(default = "seconds")]
    pub unit: String,
}

fn seconds() -> String {
    "s".into()
}

/// Longest sleep Kazoo allows.
const CAP: Duration = Duration::from_secs(24 * 3600);

impl Data {
    /// The pause, capped at 24 h.
    pub fn pause(&self) -> Duration {
        let ms = match self.unit.as_str() {
            "ms" => self.duration,
            "m" => self.duration.saturating_mul(60_000),
            "h" => self.duration.saturating_mul(3_600_000),
            _ => self.duration.saturating_mul(1000),
        };
        Duration::from_millis(ms).min(CAP)
    }
}

impl CallflowModule for Sleep {
    const NAME: &'static str = "sleep";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Pause the callflow",
            "properties": {
                "duration": {"type": "integer", "minimum": 0, "default": 0},
                "unit": {"type": "string", "enum": ["ms", "s", "m", "h"], "default": "s"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        call.sleep(data.pause()).await?;
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_cap() {
        let d = |duration, unit: &str| {
            Data {
                duration,
                unit: unit.into(),
            }
            .pause()
        };
        assert_eq!(d(1500, "ms"), Duration::from_millis(1500));
        assert_eq!(d(2, "m"), Duration::from_secs(120));
        assert_eq!(d(48, "h"), CAP);
        assert_eq!(d(u64::MAX, "h"), CAP);
    }
}

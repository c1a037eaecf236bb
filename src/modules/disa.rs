//! `disa` (Direct Inward System Access): an outside caller enters a PIN, hears dial tone and
//! dials any number as if from inside the office; the number is routed through the account's
//! callflows (including `no_match` / carriers).
//!
//! ESL: `execute answer`; with a `pin`: `execute playback ivr/ivr-please_enter_pin_followed_by_pound.wav`,
//! digits collected from DTMF events, `execute playback ivr/ivr-pin_or_extension_is-invalid.wav` on a
//! wrong PIN (up to `retries`); then `execute playback <dial tone or ringing tone>` (stopped by the
//! first digit, which is kept) and the number is collected (`max_digits`, `interdigit`, `#` ends).
//! The PIN is compared in constant time. Children: `_` when the retries are used up or nothing is
//! dialled; a routed number branches to its callflow; an unroutable one continues to `_`.

use super::play::{all_keys, set_terminators};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded, Collect};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The `disa` module.
pub struct Disa;

/// `disa` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// PIN ("" = none).
    #[serde(default)]
    pub pin: String,
    /// PIN attempts.
    #[serde(default = "three")]
    pub retries: u32,
    /// Wait between digits (ms).
    #[serde(default = "two_s")]
    pub interdigit: u64,
    /// Longest number.
    #[serde(default = "fifteen")]
    pub max_digits: usize,
    /// `dialtone` or `ringing`.
    #[serde(default = "dialtone")]
    pub preconnect_audio: String,
}

fn three() -> u32 {
    3
}
fn two_s() -> u64 {
    2000
}
fn fifteen() -> usize {
    15
}
fn dialtone() -> String {
    "dialtone".into()
}

/// Prompt asking for the PIN.
pub const PIN_PROMPT: &str = "ivr/ivr-please_enter_pin_followed_by_pound.wav";
/// Prompt after a wrong PIN.
pub const BAD_PIN_PROMPT: &str = "ivr/ivr-pin_or_extension_is-invalid.wav";
/// North-American dial tone, 10 s.
pub const DIAL_TONE: &str = "tone_stream://%(10000,0,350,440)";
/// North-American ringback, 10 s.
pub const RING_TONE: &str = "tone_stream://%(2000,4000,440,480);loops=2";

/// Constant-time PIN check.
pub fn pin_ok(expected: &str, entered: &str) -> bool {
    expected.len() == entered.len() && bool::from(expected.as_bytes().ct_eq(entered.as_bytes()))
}

impl CallflowModule for Disa {
    const NAME: &'static str = "disa";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Let an authorised caller dial out as if from inside",
            "properties": {
                "pin": {"type": "string", "pattern": "^[0-9]{0,16}$", "default": ""},
                "retries": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                "interdigit": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 2000},
                "max_digits": {"type": "integer", "minimum": 1, "maximum": 32, "default": 15},
                "preconnect_audio": {"type": "string", "enum": ["dialtone", "ringing"], "default": "dialtone"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        call.execute("answer", "").await?;
        set_terminators(call, &all_keys()).await?;
        let interdigit = Duration::from_millis(data.interdigit);
        if !data.pin.is_empty() {
            let mut accepted = false;
            for _ in 0..data.retries.max(1) {
                call.execute_long("playback", PIN_PROMPT).await?;
                let entered = call
                    .collect_digits(&Collect {
                        max_digits: 16,
                        timeout: Duration::from_secs(10),
                        interdigit,
                        terminators: "#".into(),
                    })
                    .await?;
                if pin_ok(&data.pin, &entered) {
                    accepted = true;
                    break;
                }
                call.execute_long("playback", BAD_PIN_PROMPT).await?;
            }
            if !accepted {
                tracing::warn!("disa: PIN retries used up");
                return Ok(Next::default_child());
            }
        }
        let tone = if data.preconnect_audio == "ringing" {
            RING_TONE
        } else {
            DIAL_TONE
        };
        call.execute_long("playback", tone).await?;
        let number = call
            .collect_digits(&Collect {
                max_digits: data.max_digits,
                timeout: interdigit.max(Duration::from_secs(5)),
                interdigit,
                terminators: "#".into(),
            })
            .await?;
        if number.is_empty() {
            return Ok(Next::default_child());
        }
        let route = call.ctx.store.routing().lookup(&call.account_id, &number);
        match route.and_then(|r| super::callflow::load(call, &r.callflow_id).map(|f| (r, f))) {
            Some((route, flow)) => {
                call.kvs.insert(
                    "capture_group".into(),
                    Value::String(route.capture_group.unwrap_or(number)),
                );
                Ok(Next::Branch(Box::new(flow)))
            }
            None => {
                tracing::info!(%number, "disa: nothing routes the dialled number");
                Ok(Next::default_child())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_comparison() {
        assert!(pin_ok("1234", "1234"));
        assert!(!pin_ok("1234", "123"));
        assert!(!pin_ok("1234", "1235"));
    }
}

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
        match super::callflow::route_number(call, &number) {
            Some(flow) => Ok(Next::Branch(Box::new(flow))),
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

    use crate::engine::testkit::{
        add_callflow, apps, branches, node, run_with_store, script, store_for,
    };
    use crate::modules::bridge::tests::{assert_caller_hung_up, play};
    use crate::store::memory::MemStore;
    use std::sync::Arc;
    use std::time::Duration;

    const TARGET: &str = "cf0000000000000000000000000000a9";

    fn store(data: Value) -> Arc<MemStore> {
        let store = store_for(node("disa", data, json!({"_": play("denied.wav")})));
        add_callflow(&store, TARGET, &["2001"], &[], play("target.wav"));
        store
    }

    fn pin_data() -> Value {
        json!({"pin": "1234", "retries": 2, "interdigit": 1000})
    }

    fn head() -> Vec<String> {
        vec![
            "answer".into(),
            "set playback_terminators=123456789*0#".into(),
        ]
    }

    fn playbacks(files: &[&str]) -> Vec<String> {
        let mut all = head();
        all.extend(files.iter().map(|f| format!("playback {f}")));
        all
    }

    #[tokio::test]
    async fn right_pin_dial_tone_then_the_number_branches_to_its_callflow() {
        let sim = run_with_store(
            store(pin_data()),
            script()
                .dtmf("1234#@playback+50ms,2001#@playback#2+50ms")
                .expect("digits"),
        )
        .await;
        // Kazoo's branch pushed the disa node's `_`: it runs when the dialled flow stops.
        assert_eq!(
            apps(&sim),
            playbacks(&[PIN_PROMPT, DIAL_TONE, "target.wav", "denied.wav"])
        );
        assert_eq!(
            branches(&sim)[..2],
            ["branch -> play", "_ (no child: stop)"]
        );
    }

    #[tokio::test]
    async fn a_wrong_pin_is_retried() {
        let sim = run_with_store(
            store(pin_data()),
            script()
                .dtmf("9999#@playback+50ms,1234#@playback#3+50ms,2001#@playback#4+50ms")
                .expect("digits"),
        )
        .await;
        assert_eq!(
            apps(&sim),
            playbacks(&[
                PIN_PROMPT,
                BAD_PIN_PROMPT,
                PIN_PROMPT,
                DIAL_TONE,
                "target.wav",
                "denied.wav"
            ])
        );
    }

    #[tokio::test]
    async fn wrong_pins_use_up_the_retries_then_default() {
        let sim = run_with_store(
            store(pin_data()),
            script()
                .dtmf("9999#@playback+50ms,1111#@playback#3+50ms")
                .expect("digits"),
        )
        .await;
        assert_eq!(
            apps(&sim),
            playbacks(&[
                PIN_PROMPT,
                BAD_PIN_PROMPT,
                PIN_PROMPT,
                BAD_PIN_PROMPT,
                "denied.wav"
            ])
        );
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn without_pin_ringing_and_unrouted_numbers() {
        // No PIN, ringing instead of dial tone, a number nothing routes: `_`.
        let sim = run_with_store(
            store(json!({"preconnect_audio": "ringing", "interdigit": 1000})),
            script().dtmf("7777#@playback+50ms").expect("digits"),
        )
        .await;
        assert_eq!(apps(&sim), playbacks(&[RING_TONE, "denied.wav"]));
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn caller_hanging_up_at_the_pin_prompt_ends_the_flow() {
        let sim = run_with_store(
            store(pin_data()),
            script()
                .file_duration(PIN_PROMPT, Duration::from_secs(5))
                .hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert_caller_hung_up(&sim);
        assert!(branches(&sim).is_empty());
    }
}

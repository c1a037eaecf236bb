//! `tts`: speaks text with FreeSWITCH's flite engine.
//!
//! ESL: `execute set playback_terminators=<keys>` (when it changes), then
//! `execute speak flite|<voice>|<text>` (female = `slt`, male = `rms`), or, with
//! `endless_playback`, repeated until the caller presses a terminator or hangs up (at most one
//! repeat per 500 ms, so a `speak` that fails at once cannot spin).
//! Children: `_`. An engine other than flite is refused at validation: callflowd has no media
//! server to render it (Kazoo falls back to flite the same way).

use super::media;
use super::play::{all_keys, set_terminators};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Shortest round of an endless prompt (FreeSWITCH's own `loops` treats a faster iteration as
/// a failure too).
const MIN_ROUND: Duration = Duration::from_millis(500);

/// The `tts` module.
pub struct Tts;

/// `tts` data (Kazoo's `callflows.tts`).
#[derive(Debug, Deserialize)]
pub struct Data {
    /// What to say.
    pub text: String,
    /// `female` or `male` (or a flite voice name).
    #[serde(default = "female")]
    pub voice: String,
    /// Language tag; flite speaks English only, so it is kept for logs and future engines.
    #[serde(default)]
    pub language: Option<String>,
    /// DTMF keys that stop the speech.
    #[serde(default = "all_keys")]
    pub terminators: Vec<String>,
    /// Repeat until a terminator or hangup.
    #[serde(default)]
    pub endless_playback: bool,
}

fn female() -> String {
    "female".into()
}

impl CallflowModule for Tts {
    const NAME: &'static str = "tts";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Text to speech (flite)",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 1000},
                "voice": {"type": "string", "enum": ["female", "male", "slt", "rms", "kal", "awb"], "default": "female"},
                "language": {"type": "string", "pattern": "^[A-Za-z]{2}(-[A-Za-z]{2})?$"},
                "engine": {"type": "string", "enum": ["flite"], "default": "flite"},
                "terminators": {"type": "array", "default": all_keys(),
                    "items": {"type": "string", "enum": ["1","2","3","4","5","6","7","8","9","*","0","#"]}},
                "endless_playback": {"type": "boolean", "default": false}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        set_terminators(call, &data.terminators).await?;
        let arg = media::flite_arg(&data.voice, &data.text);
        let pressed_before = call.pending_dtmf().count();
        loop {
            let started = Instant::now();
            call.execute_long("speak", &arg).await?;
            if !data.endless_playback || call.pending_dtmf().count() > pressed_before {
                break;
            }
            // A switch that cannot speak (no flite) returns at once: pace the repeats so an
            // endless prompt never turns into a command storm.
            let took = started.elapsed();
            if took < MIN_ROUND {
                call.sleep(MIN_ROUND - took).await?;
                if call.pending_dtmf().count() > pressed_before {
                    break;
                }
            }
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;
    use std::time::Duration;

    const ALL_KEYS: &str = "set playback_terminators=123456789*0#";

    fn tts(data: serde_json::Value) -> serde_json::Value {
        node("tts", data, json!({"_": marker("after", json!({}))}))
    }

    #[tokio::test]
    async fn speaks_with_flite_and_continues() {
        let sim = run(tts(json!({"text": "Welcome to callflowd"})), script()).await;
        assert_eq!(
            apps(&sim),
            [
                ALL_KEYS,
                "speak flite|slt|Welcome to callflowd",
                "set marker=after"
            ]
        );
        assert_eq!(branches(&sim)[0], "_");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn male_voice_and_pipes_in_the_text() {
        let sim = run(
            tts(json!({"text": "a|b", "voice": "male", "terminators": ["#"]})),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                "set playback_terminators=#",
                "speak flite|rms|a b",
                "set marker=after"
            ]
        );
    }

    #[tokio::test]
    async fn caller_hangup_mid_speech_ends_the_flow() {
        let sim = run(
            tts(json!({"text": "a long text"})),
            caller_hangs_up_mid_media(),
        )
        .await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(apps(&sim), [ALL_KEYS, "speak flite|slt|a long text"]);
    }

    #[tokio::test]
    async fn endless_speech_repeats_until_a_key_is_pressed() {
        let script = script()
            .file_duration("flite", Duration::from_millis(300))
            .dtmf_after_app('1', "speak", 2, Duration::from_millis(100));
        let sim = run(
            tts(json!({"text": "press a key", "endless_playback": true})),
            script,
        )
        .await;
        let speaks = apps(&sim).iter().filter(|a| a.starts_with("speak")).count();
        assert_eq!(speaks, 2);
        assert_eq!(markers(&sim), ["after"]);
    }

    #[tokio::test]
    async fn endless_speech_that_fails_at_once_is_not_a_hot_loop() {
        // A switch without flite returns from `speak` at once; repeating must not spin.
        let script = script()
            .file_duration("flite", Duration::ZERO)
            .hangup_after(Duration::from_millis(1200));
        let sim = run(tts(json!({"text": "x", "endless_playback": true})), script).await;
        let speaks = apps(&sim).iter().filter(|a| a.starts_with("speak")).count();
        assert!(
            (1..=5).contains(&speaks),
            "{speaks} speak commands in 1.2 s"
        );
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
    }
}

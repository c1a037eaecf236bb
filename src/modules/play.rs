//! `play`: plays a file, URL, tone or silence stream.
//!
//! ESL, in order: `execute answer` (unless `answer: false` or already answered),
//! `execute set playback_terminators=<keys>` (only when it changes), then `execute playback
//! <path>` `loop_count` times (stopping early when a terminator is pressed), or `execute
//! endless_playback <path>` when `endless_playback` is true; `tts://text` is spoken with `speak`.
//! Children: `_` (also when the file is missing: Kazoo continues). A hangup ends the flow
//! (Kazoo: hard_stop).

use super::media::{self, Media};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `play` module.
pub struct Play;

/// `play` data (Kazoo's `callflows.play`).
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Media reference: path, `http(s)://`, `tone_stream://`, `silence_stream://`, `tts://`.
    pub id: String,
    /// Answer first (default true).
    #[serde(default = "yes")]
    pub answer: bool,
    /// DTMF keys that stop the playback.
    #[serde(default = "all_keys")]
    pub terminators: Vec<String>,
    /// Loop until the caller hangs up or presses a terminator.
    #[serde(default)]
    pub endless_playback: bool,
    /// How many times to play.
    #[serde(default = "one")]
    pub loop_count: u32,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// Kazoo's default terminators: every DTMF key.
pub fn all_keys() -> Vec<String> {
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl CallflowModule for Play {
    const NAME: &'static str = "play";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Play a media file, URL, tone or silence",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 2048,
                       "description": "Path, http(s) URL, tone_stream://, silence_stream:// or tts://text"},
                "answer": {"type": "boolean", "default": true, "description": "Answer before playing"},
                "terminators": {"type": "array", "default": all_keys(),
                    "items": {"type": "string", "enum": ["1","2","3","4","5","6","7","8","9","*","0","#"]},
                    "description": "DTMF keys that stop the playback"},
                "endless_playback": {"type": "boolean", "default": false, "description": "Loop until hangup or a terminator"},
                "loop_count": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1, "description": "How many times to play"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        if data.answer {
            answer_if_needed(call).await?;
        }
        set_terminators(call, &data.terminators).await?;
        let target = media::resolve_for(call, &data.id);
        if data.endless_playback {
            if let Media::Playback(path) = &target {
                call.execute_long("endless_playback", path).await?;
                return Ok(Next::default_child());
            }
        }
        for _ in 0..data.loop_count.max(1) {
            let pressed_before = call.pending_dtmf().count();
            let completion = match &target {
                Media::Playback(path) => call.execute_long("playback", path).await?,
                Media::Speak(text) => {
                    call.execute_long("speak", &media::flite_arg("female", text))
                        .await?
                }
            };
            if completion.response == "FILE NOT FOUND" {
                tracing::warn!(media = %data.id, "media not found");
                break;
            }
            let pressed_now = call.pending_dtmf().count();
            if pressed_now > pressed_before {
                break;
            }
        }
        Ok(Next::default_child())
    }
}

/// Answers unless the channel is already answered (Kazoo's `play` answers by default).
pub async fn answer_if_needed(call: &mut Call) -> Result<(), CallEnded> {
    if !call.is_answered() {
        call.execute("answer", "").await?;
    }
    Ok(())
}

/// Sets `playback_terminators` when it differs from what this call last set.
pub async fn set_terminators(call: &mut Call, keys: &[String]) -> Result<(), CallEnded> {
    let wanted = if keys.is_empty() {
        "none".to_string()
    } else {
        keys.concat()
    };
    let current = call.kvs.get("playback_terminators").and_then(Value::as_str);
    if current == Some(wanted.as_str()) {
        return Ok(());
    }
    call.set_var("playback_terminators", &wanted).await?;
    call.kvs
        .insert("playback_terminators".into(), Value::String(wanted));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;
    use std::time::Duration;

    const ALL_KEYS: &str = "set playback_terminators=123456789*0#";

    fn play(data: serde_json::Value) -> serde_json::Value {
        node("play", data, json!({"_": marker("after", json!({}))}))
    }

    #[tokio::test]
    async fn answers_sets_terminators_plays_and_continues() {
        let sim = run(play(json!({"id": "ivr/ivr-welcome.wav"})), script()).await;
        assert_eq!(
            apps(&sim),
            [
                "answer",
                ALL_KEYS,
                "playback ivr/ivr-welcome.wav",
                "set marker=after"
            ]
        );
        assert_eq!(branches(&sim)[0], "_");
        assert_eq!(
            sim.transcript.app_responses()[2],
            ("playback".to_string(), "FILE PLAYED".to_string())
        );
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn does_not_answer_twice_or_reset_unchanged_terminators() {
        let flow = node(
            "answer",
            json!({}),
            json!({"_": node("play", json!({"id": "a.wav"}),
                json!({"_": node("play", json!({"id": "b.wav", "answer": false}), json!({}))}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(
            apps(&sim),
            ["answer", ALL_KEYS, "playback a.wav", "playback b.wav"]
        );
    }

    #[tokio::test]
    async fn missing_file_continues_to_the_default_child() {
        let sim = run(
            play(json!({"id": "custom/gone.wav", "loop_count": 3})),
            script().missing_file("gone"),
        )
        .await;
        // One attempt only: a missing file is not retried `loop_count` times.
        assert_eq!(
            apps(&sim),
            [
                "answer",
                ALL_KEYS,
                "playback custom/gone.wav",
                "set marker=after"
            ]
        );
        assert_eq!(
            sim.transcript.app_responses()[2].1,
            "FILE NOT FOUND".to_string()
        );
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn caller_hangup_mid_playback_ends_the_flow() {
        let sim = run(
            play(json!({"id": "ivr/long.wav"})),
            caller_hangs_up_mid_media(),
        )
        .await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(apps(&sim), ["answer", ALL_KEYS, "playback ivr/long.wav"]);
        assert!(markers(&sim).is_empty());
    }

    #[tokio::test]
    async fn loops_and_a_terminator_stops_the_loop() {
        let sim = run(play(json!({"id": "tone.wav", "loop_count": 3})), script()).await;
        let plays = apps(&sim)
            .iter()
            .filter(|a| *a == "playback tone.wav")
            .count();
        assert_eq!(plays, 3);

        let script = script()
            .file_duration("tone.wav", Duration::from_secs(3))
            .dtmf_after_app('5', "playback", 1, Duration::from_millis(300));
        let sim = run(play(json!({"id": "tone.wav", "loop_count": 3})), script).await;
        assert_eq!(
            apps(&sim),
            ["answer", ALL_KEYS, "playback tone.wav", "set marker=after"]
        );
    }

    #[tokio::test]
    async fn terminators_are_sent_as_configured() {
        let sim = run(
            play(json!({"id": "a.wav", "terminators": ["#", "*"], "answer": false})),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                "set playback_terminators=#*",
                "playback a.wav",
                "set marker=after"
            ]
        );
        let sim = run(
            play(json!({"id": "a.wav", "terminators": [], "answer": false})),
            script(),
        )
        .await;
        assert_eq!(apps(&sim)[0], "set playback_terminators=none");
    }

    #[tokio::test]
    async fn urls_tts_and_endless_playback() {
        let sim = run(
            play(json!({"id": "https://media.example/a.mp3", "answer": false})),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim)[1],
            "playback http_cache://https://media.example/a.mp3"
        );

        let sim = run(
            play(json!({"id": "tts://Hello there", "answer": false})),
            script(),
        )
        .await;
        assert_eq!(apps(&sim)[1], "speak flite|slt|Hello there");

        // endless_playback runs until the caller hangs up.
        let sim = run(
            play(json!({"id": "moh.wav", "endless_playback": true})),
            script().hangup_after(Duration::from_millis(500)),
        )
        .await;
        assert_eq!(apps(&sim), ["answer", ALL_KEYS, "endless_playback moh.wav"]);
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
    }
}

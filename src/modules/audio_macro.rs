//! `audio_macro`: plays a sequence of prompts, files, `say` items and tones as one unit; a
//! terminator key pressed during any item skips the rest (Kazoo queues them behind one noop).
//!
//! ESL: `execute set playback_terminators=<keys>` (when it changes), then per item:
//! play/prompt -> `execute playback <path>`; say -> `execute say <lang> <type> <method> [<gender>]
//! <text>`; tone -> `execute playback tone_stream://v=<volume>;%(<on>,<off>,<freqs>);loops=<n>`.
//! Children: `_`.

use super::media::{self, Media};
use super::play::{all_keys, set_terminators};
use super::say::{SAY_TYPES, say_arg};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `audio_macro` module.
pub struct AudioMacro;

/// One item of the macro.
#[derive(Debug, Deserialize)]
pub struct Item {
    /// `play`, `prompt`, `say` or `tone`.
    #[serde(rename = "macro")]
    pub kind: String,
    /// Media reference (play) or prompt name (prompt).
    #[serde(default)]
    pub id: Option<String>,
    /// What to say (say).
    #[serde(default)]
    pub text: Option<String>,
    /// Say type.
    #[serde(rename = "type", default)]
    pub say_type: Option<String>,
    /// Say method.
    #[serde(default)]
    pub method: Option<String>,
    /// Say gender.
    #[serde(default)]
    pub gender: Option<String>,
    /// Language of this item.
    #[serde(default)]
    pub language: Option<String>,
    /// Tone frequencies in Hz.
    #[serde(default)]
    pub frequencies: Vec<u32>,
    /// Tone on time (ms).
    #[serde(default = "on_ms")]
    pub duration_on: u32,
    /// Tone off time (ms).
    #[serde(default = "off_ms")]
    pub duration_off: u32,
    /// Tone volume (dB, negative is quieter).
    #[serde(default)]
    pub volume: Option<i32>,
    /// Tone repetitions.
    #[serde(default = "once")]
    pub repeat: u32,
}

fn on_ms() -> u32 {
    500
}
fn off_ms() -> u32 {
    100
}
fn once() -> u32 {
    1
}

/// `audio_macro` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// The items, played in order.
    pub macros: Vec<Item>,
    /// Default language for say/prompt items.
    #[serde(default)]
    pub language: Option<String>,
    /// Keys that stop the macro.
    #[serde(default = "all_keys")]
    pub terminators: Vec<String>,
}

/// The FreeSWITCH command for one item, or `None` when the item has nothing to play.
pub fn item_command(
    item: &Item,
    default_language: &str,
    resolve: &dyn Fn(&str) -> Media,
) -> Option<(&'static str, String)> {
    let language = item.language.as_deref().unwrap_or(default_language);
    match item.kind.as_str() {
        "play" => match resolve(item.id.as_deref()?) {
            Media::Playback(path) => Some(("playback", path)),
            Media::Speak(text) => Some(("speak", media::flite_arg("female", &text))),
        },
        "prompt" => {
            let id = item.id.as_deref()?;
            // System prompts live under FreeSWITCH's sound tree; `sound_prefix` selects the language.
            Some(("playback", id.to_string()))
        }
        "say" => Some((
            "say",
            say_arg(
                language,
                item.say_type.as_deref().unwrap_or("number"),
                item.method.as_deref().unwrap_or("pronounced"),
                item.gender.as_deref(),
                item.text.as_deref()?,
            ),
        )),
        "tone" => {
            if item.frequencies.is_empty() {
                return None;
            }
            let freqs = item
                .frequencies
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let volume = item.volume.map(|v| format!("v={v};")).unwrap_or_default();
            Some((
                "playback",
                format!(
                    "tone_stream://{volume}%({},{},{freqs});loops={}",
                    item.duration_on,
                    item.duration_off,
                    item.repeat.max(1)
                ),
            ))
        }
        _ => None,
    }
}

impl CallflowModule for AudioMacro {
    const NAME: &'static str = "audio_macro";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Play a sequence of files, prompts, say items and tones",
            "required": ["macros"],
            "properties": {
                "macros": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
                    "type": "object",
                    "required": ["macro"],
                    "properties": {
                        "macro": {"type": "string", "enum": ["play", "prompt", "say", "tone"]},
                        "id": {"type": "string", "minLength": 1, "maxLength": 2048},
                        "text": {"type": "string", "minLength": 1, "maxLength": 256},
                        "type": {"type": "string", "enum": SAY_TYPES},
                        "method": {"type": "string", "enum": ["pronounced", "iterated", "counted"]},
                        "gender": {"type": "string", "enum": ["masculine", "feminine", "neuter"]},
                        "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Za-z]{2})?$"},
                        "frequencies": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 20000}, "maxItems": 4},
                        "duration_on": {"type": "integer", "minimum": 0, "maximum": 60000},
                        "duration_off": {"type": "integer", "minimum": 0, "maximum": 60000},
                        "volume": {"type": "integer", "minimum": -63, "maximum": 0},
                        "repeat": {"type": "integer", "minimum": 1, "maximum": 100}
                    }
                }},
                "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Za-z]{2})?$"},
                "terminators": {"type": "array", "default": all_keys(),
                    "items": {"type": "string", "enum": ["1","2","3","4","5","6","7","8","9","*","0","#"]}}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        set_terminators(call, &data.terminators).await?;
        let language = data
            .language
            .clone()
            .or_else(|| call.var("default_language").map(str::to_string))
            .unwrap_or_else(|| "en".into());
        let pressed_before = call.pending_dtmf().count();
        for item in &data.macros {
            let resolved = item_command(item, &language, &|r| media::resolve_for(call, r));
            let Some((app, arg)) = resolved else {
                tracing::warn!(kind = %item.kind, "audio_macro item has nothing to play; skipped");
                continue;
            };
            call.execute_long(app, &arg).await?;
            if call.pending_dtmf().count() > pressed_before {
                break;
            }
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use std::time::Duration;

    const ALL_KEYS: &str = "set playback_terminators=123456789*0#";

    fn macro_node(macros: Value) -> Value {
        node(
            "audio_macro",
            json!({"macros": macros}),
            json!({"_": marker("after", json!({}))}),
        )
    }

    fn four_items() -> Value {
        json!([
            {"macro": "play", "id": "custom/intro.wav"},
            {"macro": "say", "text": "42"},
            {"macro": "tone", "frequencies": [440], "duration_on": 200, "duration_off": 0},
            {"macro": "prompt", "id": "ivr/ivr-thank_you.wav"}
        ])
    }

    #[test]
    fn tone_item() {
        let item: Item = serde_json::from_value(json!({
            "macro": "tone", "frequencies": [350, 440], "duration_on": 1000, "duration_off": 0, "volume": -10, "repeat": 2
        }))
        .unwrap();
        assert_eq!(
            item_command(&item, "en", &media::resolve),
            Some((
                "playback",
                "tone_stream://v=-10;%(1000,0,350,440);loops=2".into()
            ))
        );
    }

    #[tokio::test]
    async fn plays_every_item_in_order_then_continues() {
        let sim = run(macro_node(four_items()), script()).await;
        assert_eq!(
            apps(&sim),
            [
                ALL_KEYS,
                "playback custom/intro.wav",
                "say en number pronounced 42",
                "playback tone_stream://%(200,0,440);loops=1",
                "playback ivr/ivr-thank_you.wav",
                "set marker=after"
            ]
        );
        assert_eq!(branches(&sim)[0], "_");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn a_terminator_skips_the_remaining_items() {
        let script = script()
            .file_duration("intro", Duration::from_secs(3))
            .dtmf_after_app('#', "playback", 1, Duration::from_millis(300));
        let sim = run(macro_node(four_items()), script).await;
        assert_eq!(
            apps(&sim),
            [ALL_KEYS, "playback custom/intro.wav", "set marker=after"]
        );
    }

    #[tokio::test]
    async fn a_missing_file_does_not_stop_the_macro() {
        let sim = run(macro_node(four_items()), script().missing_file("intro")).await;
        assert_eq!(apps(&sim).len(), 6);
        assert_eq!(
            sim.transcript.app_responses()[1],
            ("playback".to_string(), "FILE NOT FOUND".to_string())
        );
        assert_eq!(markers(&sim), ["after"]);
    }

    #[tokio::test]
    async fn say_items_follow_the_call_language() {
        let flow = node(
            "language",
            json!({"language": "fr"}),
            json!({"_": macro_node(json!([{"macro": "say", "text": "7", "type": "items"}]))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(
            apps(&sim),
            [
                "set default_language=fr",
                ALL_KEYS,
                "say fr items pronounced 7",
                "set marker=after"
            ]
        );
    }

    #[tokio::test]
    async fn caller_hangup_mid_macro_ends_the_flow() {
        let sim = run(macro_node(four_items()), caller_hangs_up_mid_media()).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(apps(&sim), [ALL_KEYS, "playback custom/intro.wav"]);
    }
}

//! `menu`: the classic auto-attendant ("press 1 for sales"), driven by a `menus` document.
//!
//! Per attempt: `execute answer` (if needed), `execute set playback_terminators=...` (when it
//! changes), `execute playback <greeting>` (skipped when the caller already typed ahead), then
//! digits are collected from DTMF events (`max_extension_length`, `timeout` for the first digit,
//! `interdigit_timeout` between digits, `#` ends) — digits pressed during the greeting count.
//! - digits naming a child -> that child (Kazoo `attempt`);
//! - with `hunt`, digits allowed by `hunt_allow`/`hunt_deny` that route to a callflow -> play the
//!   transfer prompt and branch to it;
//! - nothing entered -> the `timeout` child if there is one, else another attempt;
//! - anything else -> `execute playback <invalid prompt>` and another attempt;
//! - after `retries` attempts -> `execute playback <exit prompt>`, then the `max_retries` child,
//!   else `_`.
//!
//! Prompts: `media.greeting` (a media reference), `media.invalid_media` / `exit_media` /
//! `transfer_media` (false = silent, true = FreeSWITCH's stock prompt, or a media reference).
//! A missing menu document continues to `_`.

use super::branch_bnumber::hunt_permitted;
use super::media;
use super::play::{all_keys, answer_if_needed, set_terminators};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded, Collect};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The `menu` module.
pub struct Menu;

/// `menu` node data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// The menus document id.
    pub id: String,
    /// Wait between digits (ms).
    #[serde(default = "two_s")]
    pub interdigit_timeout: u64,
}

fn two_s() -> u64 {
    2000
}

/// The parts of a `menus` document the module uses (Kazoo's `menus` schema and defaults).
#[derive(Debug, Deserialize)]
pub struct MenuDoc {
    /// Attempts before giving up.
    #[serde(default = "three")]
    pub retries: u32,
    /// Wait for the first digit (ms).
    #[serde(default = "ten_s")]
    pub timeout: u64,
    /// Most digits per entry.
    #[serde(default = "four")]
    pub max_extension_length: usize,
    /// Dial any extension of the account.
    #[serde(default)]
    pub hunt: bool,
    /// Extensions allowed when hunting.
    #[serde(default)]
    pub hunt_allow: Option<String>,
    /// Extensions refused when hunting.
    #[serde(default)]
    pub hunt_deny: Option<String>,
    /// Prompts.
    #[serde(default)]
    pub media: MenuMedia,
}

fn three() -> u32 {
    3
}
fn ten_s() -> u64 {
    10_000
}
fn four() -> usize {
    4
}

/// A prompt setting: `false` (silent), `true` (stock prompt) or a media reference.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Prompt {
    /// Stock prompt or silence.
    Flag(bool),
    /// A media reference.
    Media(String),
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt::Flag(true)
    }
}

/// Menu prompts.
#[derive(Debug, Deserialize, Default)]
pub struct MenuMedia {
    /// Played at each attempt.
    #[serde(default)]
    pub greeting: Option<String>,
    /// After a wrong entry.
    #[serde(default)]
    pub invalid_media: Prompt,
    /// When attempts run out.
    #[serde(default)]
    pub exit_media: Prompt,
    /// Before hunting to an extension.
    #[serde(default)]
    pub transfer_media: Prompt,
}

/// FreeSWITCH stock prompts used when a prompt is `true`.
pub const INVALID_PROMPT: &str = "ivr/ivr-that_was_an_invalid_entry.wav";
/// See [`INVALID_PROMPT`].
pub const EXIT_PROMPT: &str = "voicemail/vm-goodbye.wav";
/// See [`INVALID_PROMPT`].
pub const TRANSFER_PROMPT: &str = "ivr/ivr-hold_connect_call.wav";

/// What the caller did in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Nothing within the timeout.
    Nothing,
    /// These digits.
    Digits(String),
}

/// How the menu resolves one entry, given the node's children (pure; unit-tested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go to this child.
    Child(String),
    /// Try hunting these digits as an extension.
    Hunt(String),
    /// Play the invalid prompt and try again.
    Invalid,
    /// Try again silently.
    Retry,
}

/// Decides what an entry means (children first, then hunting, then invalid).
pub fn decide(entry: &Entry, node: &Node, doc: &MenuDoc) -> Decision {
    match entry {
        Entry::Nothing if node.children.contains_key("timeout") => {
            Decision::Child("timeout".into())
        }
        Entry::Nothing => Decision::Retry,
        Entry::Digits(digits) if digits != "_" && node.children.contains_key(digits.as_str()) => {
            Decision::Child(digits.clone())
        }
        Entry::Digits(digits)
            if doc.hunt
                && hunt_permitted(digits, doc.hunt_allow.as_deref(), doc.hunt_deny.as_deref()) =>
        {
            Decision::Hunt(digits.clone())
        }
        Entry::Digits(_) => Decision::Invalid,
    }
}

async fn play_prompt(call: &mut Call, prompt: &Prompt, stock: &str) -> Result<(), CallEnded> {
    let reference = match prompt {
        Prompt::Flag(false) => return Ok(()),
        Prompt::Flag(true) => stock.to_string(),
        Prompt::Media(reference) if reference.is_empty() => return Ok(()),
        Prompt::Media(reference) => reference.clone(),
    };
    play_reference(call, &reference).await
}

async fn play_reference(call: &mut Call, reference: &str) -> Result<(), CallEnded> {
    media::play(call, reference).await.map(|_| ())
}

impl CallflowModule for Menu {
    const NAME: &'static str = "menu";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Run an auto-attendant menu from a menus document",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "menus document id"},
                "interdigit_timeout": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 2000}
            }
        })
    }

    async fn run(data: Data, node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let doc = match call.ctx.store.document(&call.account_id, "menus", &data.id) {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                tracing::warn!(menu = %data.id, "menu document not found; continuing");
                return Ok(Next::default_child());
            }
            Err(error) => {
                tracing::error!(%error, "menu lookup failed; continuing");
                return Ok(Next::default_child());
            }
        };
        let doc: MenuDoc = match MenuDoc::deserialize(&doc) {
            Ok(doc) => doc,
            Err(error) => {
                tracing::warn!(menu = %data.id, %error, "menu document does not parse; continuing");
                return Ok(Next::default_child());
            }
        };
        answer_if_needed(call).await?;
        set_terminators(call, &all_keys()).await?;
        let collect = Collect {
            max_digits: doc.max_extension_length.clamp(1, 16),
            timeout: Duration::from_millis(doc.timeout),
            interdigit: Duration::from_millis(data.interdigit_timeout),
            terminators: "#".into(),
        };
        for attempt in 1..=doc.retries.clamp(1, 10) {
            if let Some(greeting) = doc.media.greeting.as_deref().filter(|g| !g.is_empty()) {
                if call.pending_dtmf().next().is_none() {
                    play_reference(call, greeting).await?;
                }
            }
            let digits = call.collect_digits(&collect).await?;
            let entry = if digits.is_empty() {
                Entry::Nothing
            } else {
                Entry::Digits(digits)
            };
            tracing::debug!(attempt, ?entry, "menu entry");
            match decide(&entry, node, &doc) {
                Decision::Child(key) => return Ok(Next::Attempt(key)),
                Decision::Hunt(digits) => {
                    if let Some(flow) = super::callflow::route_number(call, &digits) {
                        play_prompt(call, &doc.media.transfer_media, TRANSFER_PROMPT).await?;
                        return Ok(Next::Branch(Box::new(flow)));
                    }
                    play_prompt(call, &doc.media.invalid_media, INVALID_PROMPT).await?;
                }
                Decision::Invalid => {
                    play_prompt(call, &doc.media.invalid_media, INVALID_PROMPT).await?;
                }
                Decision::Retry => {}
            }
        }
        play_prompt(call, &doc.media.exit_media, EXIT_PROMPT).await?;
        if node.children.contains_key("max_retries") {
            return Ok(Next::Attempt("max_retries".into()));
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(hunt: bool) -> MenuDoc {
        MenuDoc::deserialize(&json!({"hunt": hunt, "hunt_deny": "^9"})).unwrap()
    }

    #[test]
    fn entries_resolve_like_kazoo() {
        let node = Node::leaf("menu", json!({}))
            .child("1", Node::leaf("noop", json!({})))
            .child("timeout", Node::leaf("noop", json!({})));
        assert_eq!(
            decide(&Entry::Digits("1".into()), &node, &doc(false)),
            Decision::Child("1".into())
        );
        assert_eq!(
            decide(&Entry::Nothing, &node, &doc(false)),
            Decision::Child("timeout".into())
        );
        assert_eq!(
            decide(&Entry::Digits("22".into()), &node, &doc(false)),
            Decision::Invalid
        );
        assert_eq!(
            decide(&Entry::Digits("22".into()), &node, &doc(true)),
            Decision::Hunt("22".into())
        );
        assert_eq!(
            decide(&Entry::Digits("911".into()), &node, &doc(true)),
            Decision::Invalid
        );
        let bare = Node::leaf("menu", json!({}));
        assert_eq!(decide(&Entry::Nothing, &bare, &doc(false)), Decision::Retry);
    }

    #[test]
    fn defaults_match_kazoo() {
        let d = MenuDoc::deserialize(&json!({})).unwrap();
        assert_eq!(
            (d.retries, d.timeout, d.max_extension_length, d.hunt),
            (3, 10_000, 4, false)
        );
        assert!(matches!(d.media.invalid_media, Prompt::Flag(true)));
    }

    use crate::engine::testkit::{
        ACCOUNT, add_callflow, apps, branches, node, run_with_store, script, store_for,
    };
    use crate::fakeswitch::CallScript;
    use crate::modules::bridge::tests::{assert_caller_hung_up, play, put};
    use crate::store::memory::MemStore;
    use std::sync::Arc;
    use std::time::Duration;

    const MENU: &str = "f0000000000000000000000000000001";
    const GREETING: &str = "menu/greeting.wav";
    const OPENING: [&str; 3] = [
        "answer",
        "set playback_terminators=123456789*0#",
        "playback menu/greeting.wav",
    ];

    fn store(menu: Value, data: Value, children: Value) -> Arc<MemStore> {
        let mut data = data;
        data["id"] = json!(MENU);
        let store = store_for(node("menu", data, children));
        put(&store, "menus", MENU, menu);
        store
    }

    fn menu(extra: Value) -> Value {
        let mut doc = json!({"name": "Main", "timeout": 2000, "media": {"greeting": GREETING}});
        if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                doc.insert(k.clone(), v.clone());
            }
        }
        doc
    }

    fn options() -> Value {
        json!({"1": play("sales.wav"), "2": play("support.wav"), "12": play("twelve.wav")})
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn expected(tail: &[&str]) -> Vec<String> {
        OPENING
            .iter()
            .chain(tail.iter())
            .map(|s| s.to_string())
            .collect()
    }

    #[tokio::test]
    async fn greeting_then_a_digit_takes_that_child() {
        let sim = run_with_store(
            store(
                menu(json!({})),
                json!({"interdigit_timeout": 300}),
                options(),
            ),
            script().dtmf_after_app('2', "playback", 1, ms(400)),
        )
        .await;
        assert_eq!(apps(&sim), expected(&["playback support.wav"]));
        assert_eq!(branches(&sim)[0], "2");
    }

    #[tokio::test]
    async fn a_digit_pressed_during_the_greeting_is_not_lost() {
        let sim = run_with_store(
            store(
                menu(json!({})),
                json!({"interdigit_timeout": 300}),
                options(),
            ),
            script()
                .file_duration(GREETING, Duration::from_secs(5))
                .dtmf_after_app('1', "playback", 0, ms(100)),
        )
        .await;
        assert_eq!(apps(&sim), expected(&["playback sales.wav"]));
        assert_eq!(branches(&sim)[0], "1");
        // The digit stopped the greeting (it is a playback terminator).
        let greeting = &sim.transcript.apps[2];
        assert_eq!(greeting.arg, GREETING);
        assert_eq!(greeting.response.as_deref(), Some("FILE PLAYED"));
    }

    #[tokio::test]
    async fn several_digits_end_with_the_interdigit_timeout() {
        let sim = run_with_store(
            store(
                menu(json!({})),
                json!({"interdigit_timeout": 1000}),
                options(),
            ),
            script().dtmf("12@playback+300ms").expect("digits"),
        )
        .await;
        assert_eq!(apps(&sim), expected(&["playback twelve.wav"]));
        assert_eq!(branches(&sim)[0], "12");
    }

    #[tokio::test]
    async fn an_invalid_entry_plays_the_invalid_prompt_and_retries() {
        let sim = run_with_store(
            store(
                menu(json!({})),
                json!({"interdigit_timeout": 300}),
                options(),
            ),
            script()
                .dtmf_after_app('9', "playback", 1, ms(50))
                .dtmf_after_app('1', "playback", 3, ms(50)),
        )
        .await;
        assert_eq!(
            apps(&sim),
            expected(&[
                &format!("playback {INVALID_PROMPT}"),
                "playback menu/greeting.wav",
                "playback sales.wav"
            ])
        );
        assert_eq!(branches(&sim)[0], "1");
    }

    #[tokio::test]
    async fn typing_ahead_during_the_invalid_prompt_skips_the_next_greeting() {
        let sim = run_with_store(
            store(
                menu(json!({})),
                json!({"interdigit_timeout": 300}),
                options(),
            ),
            script()
                .file_duration("ivr-that_was_an_invalid_entry", Duration::from_secs(5))
                .dtmf_after_app('9', "playback", 1, ms(50))
                .dtmf_after_app('2', "playback", 2, ms(100)),
        )
        .await;
        assert_eq!(
            apps(&sim),
            expected(&[
                &format!("playback {INVALID_PROMPT}"),
                "playback support.wav"
            ])
        );
    }

    #[tokio::test]
    async fn nothing_entered_takes_the_timeout_child() {
        let mut children = options();
        children["timeout"] = play("timeout.wav");
        let sim = run_with_store(
            store(menu(json!({"timeout": 300})), json!({}), children),
            script(),
        )
        .await;
        assert_eq!(apps(&sim), expected(&["playback timeout.wav"]));
        assert_eq!(branches(&sim)[0], "timeout");
    }

    #[tokio::test]
    async fn retries_run_out_into_max_retries() {
        let mut children = options();
        children["max_retries"] = play("bye.wav");
        children["_"] = play("default.wav");
        let sim = run_with_store(
            store(
                menu(json!({"timeout": 300, "retries": 2})),
                json!({"interdigit_timeout": 200}),
                children,
            ),
            // One wrong entry, then nothing.
            script().dtmf_after_app('7', "playback", 1, ms(50)),
        )
        .await;
        assert_eq!(
            apps(&sim),
            expected(&[
                &format!("playback {INVALID_PROMPT}"),
                "playback menu/greeting.wav",
                &format!("playback {EXIT_PROMPT}"),
                "playback bye.wav"
            ])
        );
        assert_eq!(branches(&sim)[0], "max_retries");

        // Without a max_retries child: `_`.
        let sim = run_with_store(
            store(
                menu(json!({"timeout": 300, "retries": 1})),
                json!({}),
                json!({"_": play("default.wav")}),
            ),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            expected(&[&format!("playback {EXIT_PROMPT}"), "playback default.wav"])
        );
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn hunting_branches_to_the_extensions_callflow() {
        const EXT: &str = "cf0000000000000000000000000000e1";
        let s = store(
            menu(json!({"hunt": true, "hunt_deny": "^9"})),
            json!({"interdigit_timeout": 1000}),
            options(),
        );
        add_callflow(&s, EXT, &["2001"], &[], play("extension.wav"));
        let sim = run_with_store(s, script().dtmf("2001@playback+100ms").expect("digits")).await;
        assert_eq!(
            apps(&sim),
            expected(&[
                &format!("playback {TRANSFER_PROMPT}"),
                "playback extension.wav"
            ])
        );
        assert_eq!(branches(&sim)[0], "branch -> play");

        // A denied or unrouted extension is an invalid entry.
        let s = store(
            menu(json!({"hunt": true, "hunt_deny": "^9", "retries": 1})),
            json!({"interdigit_timeout": 1000}),
            json!({"_": play("default.wav")}),
        );
        add_callflow(&s, EXT, &["9001"], &[], play("extension.wav"));
        let sim = run_with_store(s, script().dtmf("9001@playback+100ms").expect("digits")).await;
        assert!(!apps(&sim).contains(&"playback extension.wav".to_string()));
        assert_eq!(apps(&sim)[3..4], [format!("playback {INVALID_PROMPT}")]);
    }

    #[tokio::test]
    async fn a_missing_menu_continues_without_touching_the_call() {
        let s = store_for(node(
            "menu",
            json!({"id": MENU}),
            json!({"_": play("default.wav")}),
        ));
        let sim = run_with_store(s, script()).await;
        assert_eq!(
            apps(&sim),
            [
                "answer",
                "set playback_terminators=123456789*0#",
                "playback default.wav"
            ]
        );
        assert_eq!(branches(&sim)[0], "_");
        let _ = ACCOUNT;
    }

    #[tokio::test]
    async fn caller_hanging_up_during_the_menu_ends_the_flow() {
        let sim = run_with_store(
            store(
                menu(json!({})),
                json!({}),
                json!({"_": play("default.wav")}),
            ),
            CallScript::new(crate::engine::testkit::NUMBER)
                .account(Some(ACCOUNT))
                .file_duration(GREETING, Duration::from_secs(5))
                .hangup_after(ms(300)),
        )
        .await;
        assert_caller_hung_up(&sim);
        assert_eq!(apps(&sim), expected(&[]));
        assert!(branches(&sim).is_empty());
    }
}

//! `conference`: puts the caller into a FreeSWITCH conference room.
//!
//! ESL: `execute answer` (if needed), `execute playback <welcome media>` when
//! `welcome_prompt.media_id` is set, then `execute conference <room>@<profile>[+flags{...}]`,
//! which runs until the caller leaves the room. Room names are prefixed with the account id so
//! two tenants' "sales" rooms never meet. The room comes from the inline `config` or from the
//! conferences document `id`. When the caller leaves the room while still connected, the call
//! is hung up (Kazoo hands the call to its conference service instead). Children: `_` when the
//! room cannot be found.

use super::media;
use super::play::answer_if_needed;
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `conference` module.
pub struct Conference;

/// Inline conference settings.
#[derive(Debug, Deserialize, Default)]
pub struct Config {
    /// Room name.
    #[serde(default)]
    pub name: Option<String>,
    /// FreeSWITCH conference profile.
    #[serde(default)]
    pub profile: Option<String>,
    /// Member flags (`mute`, `deaf`, `moderator`, `endconf`, ...).
    #[serde(default)]
    pub flags: Vec<String>,
}

/// Welcome prompt settings.
#[derive(Debug, Deserialize, Default)]
pub struct Welcome {
    /// Play it.
    #[serde(default)]
    pub play: bool,
    /// What to play.
    #[serde(default)]
    pub media_id: Option<String>,
}

/// `conference` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// A conferences document id.
    #[serde(default)]
    pub id: Option<String>,
    /// Inline room settings.
    #[serde(default)]
    pub config: Option<Config>,
    /// Join as moderator.
    #[serde(default)]
    pub moderator: bool,
    /// Welcome prompt.
    #[serde(default)]
    pub welcome_prompt: Welcome,
}

/// Member flags FreeSWITCH's conference app accepts.
pub const MEMBER_FLAGS: [&str; 12] = [
    "mute",
    "deaf",
    "moderator",
    "endconf",
    "mintwo",
    "nomoh",
    "ghost",
    "join-only",
    "mandatory_member_endconf",
    "vmute",
    "join-vid-floor",
    "positional",
];

/// The `conference` argument: `<account>_<room>@<profile>[+flags{a|b}]`.
pub fn conference_arg(account_id: &str, room: &str, profile: &str, flags: &[String]) -> String {
    let mut arg = format!("{account_id}_{room}@{profile}");
    if !flags.is_empty() {
        arg.push_str(&format!("+flags{{{}}}", flags.join("|")));
    }
    arg
}

impl CallflowModule for Conference {
    const NAME: &'static str = "conference";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Join a conference room",
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "config": {"type": "object", "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,64}$"},
                    "profile": {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,64}$", "default": "default"},
                    "flags": {"type": "array", "items": {"type": "string", "enum": MEMBER_FLAGS}, "default": []}
                }},
                "moderator": {"type": "boolean", "default": false},
                "welcome_prompt": {"type": "object", "properties": {
                    "play": {"type": "boolean", "default": false},
                    "media_id": {"type": "string", "minLength": 1, "maxLength": 2048}
                }}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let config = data.config.unwrap_or_default();
        let room = match (&config.name, &data.id) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(id)) => {
                match call.ctx.store.document(&call.account_id, "conferences", id) {
                    Ok(Some(_)) => Some(id.clone()),
                    Ok(None) => None,
                    Err(error) => {
                        tracing::error!(%error, "conference lookup failed");
                        None
                    }
                }
            }
            (None, None) => None,
        };
        let Some(room) = room else {
            tracing::warn!("conference has no room (no config.name, unknown id); continuing");
            return Ok(Next::default_child());
        };
        answer_if_needed(call).await?;
        if data.welcome_prompt.play {
            if let Some(reference) = &data.welcome_prompt.media_id {
                media::play(call, reference).await?;
            }
        }
        let mut flags = config.flags.clone();
        if data.moderator && !flags.iter().any(|f| f == "moderator") {
            flags.push("moderator".into());
        }
        let profile = config.profile.as_deref().unwrap_or("default");
        let arg = conference_arg(&call.account_id, &room, profile, &flags);
        call.execute_long("conference", &arg).await?;
        Ok(Next::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use std::time::Duration;

    fn conference(data: Value) -> Value {
        node("conference", data, json!({"_": marker("after", json!({}))}))
    }

    fn short_room() -> crate::fakeswitch::CallScript {
        script().app_duration("conference", Duration::from_millis(300))
    }

    #[test]
    fn argument_shape() {
        assert_eq!(
            conference_arg("acc", "sales", "default", &[]),
            "acc_sales@default"
        );
        assert_eq!(
            conference_arg(
                "acc",
                "sales",
                "wideband",
                &["mute".into(), "moderator".into()]
            ),
            "acc_sales@wideband+flags{mute|moderator}"
        );
    }

    #[tokio::test]
    async fn answers_joins_and_hangs_up_when_the_caller_leaves_the_room() {
        let sim = run(
            conference(json!({"config": {"name": "sales"}})),
            short_room(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                "answer".to_string(),
                format!("conference {ACCOUNT}_sales@default")
            ]
        );
        // Leaving the room stops the flow: `_` is not run.
        assert_eq!(branches(&sim), ["stop"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn welcome_prompt_profile_flags_and_moderator() {
        let data = json!({
            "config": {"name": "board", "profile": "wideband", "flags": ["mute"]},
            "moderator": true,
            "welcome_prompt": {"play": true, "media_id": "conference/conf-welcome.wav"}
        });
        let sim = run(conference(data), short_room()).await;
        assert_eq!(
            apps(&sim),
            [
                "answer".to_string(),
                "playback conference/conf-welcome.wav".to_string(),
                format!("conference {ACCOUNT}_board@wideband+flags{{mute|moderator}}")
            ]
        );
    }

    #[tokio::test]
    async fn a_conferences_document_names_the_room() {
        const ROOM: &str = "00000000000000000000000000000c01";
        let store = store_with_flow(validated(conference(json!({"id": ROOM}))));
        store.put(ACCOUNT, "conferences", ROOM, json!({"name": "All hands"}));
        let sim = run_with_store(store, short_room()).await;
        assert_eq!(
            apps(&sim),
            [
                "answer".to_string(),
                format!("conference {ACCOUNT}_{ROOM}@default")
            ]
        );
    }

    #[tokio::test]
    async fn unknown_room_continues_without_answering() {
        let sim = run(
            conference(json!({"id": "00000000000000000000000000000c99"})),
            script(),
        )
        .await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn caller_hangup_in_the_room_ends_the_flow() {
        let script = script()
            .app_duration("conference", Duration::from_secs(5))
            .hangup_after(Duration::from_millis(800));
        let sim = run(conference(json!({"config": {"name": "sales"}})), script).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert!(markers(&sim).is_empty());
    }
}

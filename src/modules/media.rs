//! Turns a Kazoo media reference into something FreeSWITCH's `playback` understands.
//!
//! - `tone_stream://`, `silence_stream://`, `local_stream://`, `http_cache://`, `shout://`
//!   and absolute paths pass through;
//! - `http(s)://URL` becomes `http_cache://URL` (mod_http_cache fetches and caches it);
//! - `tts://text` becomes `say:`-free flite speech via `speak` (see [`Media::Speak`]);
//! - a 32-hex media id names a file uploaded through `PUT .../media/{id}/raw` (see
//!   [`resolve_for`]: it needs the call's account and the data directory);
//! - anything else is a path relative to FreeSWITCH's sound directory (`ivr/ivr-welcome.wav`).

/// What to send to play one media reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// `playback <path>`.
    Playback(String),
    /// `speak flite|<voice>|<text>`.
    Speak(String),
}

/// Resolves a media reference (see the module docs).
pub fn resolve(id: &str) -> Media {
    let id = id.trim();
    if let Some(text) = id.strip_prefix("tts://") {
        return Media::Speak(text.to_string());
    }
    if id.starts_with("http://") || id.starts_with("https://") {
        return Media::Playback(format!("http_cache://{id}"));
    }
    Media::Playback(id.to_string())
}

/// The FreeSWITCH `speak` argument for flite (Kazoo: female = slt, male = rms).
pub fn flite_arg(voice: &str, text: &str) -> String {
    let voice = match voice {
        "male" | "rms" => "rms",
        "kal" => "kal",
        "awb" => "awb",
        _ => "slt",
    };
    // `speak` splits on `|`; a `|` inside the text would cut it.
    let text = text.replace('|', " ");
    format!("flite|{voice}|{text}")
}

/// Resolves a reference for a call: a media id of the call's account becomes the absolute path
/// of its uploaded file (FreeSWITCH and callflowd share the host in this design); anything else
/// as [`resolve`]. An unknown media id resolves as a sound path, which FreeSWITCH reports as
/// FILE NOT FOUND.
pub fn resolve_for(call: &crate::engine::call::Call, reference: &str) -> Media {
    let id = reference.trim();
    if crate::util::is_valid_id(id) {
        if let Some(data_dir) = &call.ctx.config.data_dir {
            if let Some(path) = crate::documents::media::stored_file(data_dir, &call.account_id, id)
            {
                return Media::Playback(path.to_string_lossy().into_owned());
            }
        }
        tracing::warn!(media = id, "media id has no uploaded file");
    }
    resolve(reference)
}

/// Plays a reference on the call (`execute playback <path>` or `execute speak flite|slt|text`),
/// bounded by the call deadline only.
pub async fn play(
    call: &mut crate::engine::call::Call,
    reference: &str,
) -> Result<crate::engine::call::Completion, crate::engine::call::CallEnded> {
    match resolve_for(call, reference) {
        Media::Playback(path) => call.execute_long("playback", &path).await,
        Media::Speak(text) => {
            call.execute_long("speak", &flite_arg("female", &text))
                .await
        }
    }
}

/// A reference as `uuid_broadcast`/`uuid_setvar hold_music` take it: a path, or `speak::...`.
pub fn broadcastable(call: &crate::engine::call::Call, reference: &str) -> String {
    match resolve_for(call, reference) {
        Media::Playback(path) => path,
        Media::Speak(text) => format!("speak::{}", flite_arg("female", &text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_kinds() {
        assert_eq!(
            resolve("https://x/a.wav"),
            Media::Playback("http_cache://https://x/a.wav".into())
        );
        assert_eq!(resolve("tts://hello"), Media::Speak("hello".into()));
        assert_eq!(
            resolve("tone_stream://%(100,0,440)"),
            Media::Playback("tone_stream://%(100,0,440)".into())
        );
        assert_eq!(flite_arg("male", "a|b"), "flite|rms|a b");
    }

    #[tokio::test]
    async fn uploaded_media_ids_play_from_the_data_dir() {
        use crate::engine::testkit::{
            ACCOUNT, apps, config, node, run_with_config, script, store_with_flow, validated,
        };
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123456789abcd01";
        let path = crate::documents::media::file_path(dir.path(), ACCOUNT, id, "wav");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"RIFF").unwrap();
        let flow = validated(node(
            "play",
            serde_json::json!({"id": id, "answer": false, "terminators": []}),
            serde_json::json!({}),
        ));
        let mut cfg = config();
        cfg.data_dir = Some(dir.path().to_path_buf());
        let sim = run_with_config(store_with_flow(flow), cfg, script()).await;
        let expected = format!("playback {}", path.display());
        assert!(apps(&sim).contains(&expected), "{:?}", apps(&sim));
        // An id with no upload stays a (missing) sound path.
        let other = "0123456789abcdef0123456789abcd02";
        let flow = validated(node(
            "play",
            serde_json::json!({"id": other, "answer": false, "terminators": []}),
            serde_json::json!({}),
        ));
        let mut cfg = config();
        cfg.data_dir = Some(dir.path().to_path_buf());
        let sim = run_with_config(store_with_flow(flow), cfg, script()).await;
        assert!(
            apps(&sim).contains(&format!("playback {other}")),
            "{:?}",
            apps(&sim)
        );
    }
}

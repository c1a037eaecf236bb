//! Turns a Kazoo media reference into something FreeSWITCH's `playback` understands.
//!
//! - `tone_stream://`, `silence_stream://`, `local_stream://`, `http_cache://`, `shout://`
//!   and absolute paths pass through;
//! - `http(s)://URL` becomes `http_cache://URL` (mod_http_cache fetches and caches it);
//! - `tts://text` becomes `say:`-free flite speech via `speak` (see [`Media::Speak`]);
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
}

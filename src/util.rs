//! Small helpers shared by every layer: clocks in Kazoo's units, random ids.

use rand::RngCore;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds between 0000-01-01 and 1970-01-01: Kazoo stores `pvt_created`/`pvt_modified` as
/// Gregorian seconds (Erlang's `calendar:datetime_to_gregorian_seconds`), and clients filter on it.
pub const GREGORIAN_UNIX_OFFSET: u64 = 62_167_219_200;

/// Seconds since the Unix epoch (0 if the clock is before 1970, which only a broken host has).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now in Gregorian seconds, the unit of every `pvt_*` timestamp.
pub fn gregorian_now() -> u64 {
    unix_now() + GREGORIAN_UNIX_OFFSET
}

/// `n` random bytes as lowercase hex (`random_hex(16)` = a Kazoo document id).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new document / account id: 32 lowercase hex characters, like Kazoo's `rand_hex(16)`.
pub fn new_id() -> String {
    random_hex(16)
}

/// Whether `s` looks like a Kazoo id we are willing to use as a key: 1..=128 characters from
/// `[A-Za-z0-9_-]`. Generated ids are 32 hex characters; imports may bring other shapes.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A Unix timestamp as ISO 8601 UTC (`2024-03-12T10:00:00Z`), for the envelope's `timestamp`.
/// Hand-rolled (Howard Hinnant's civil-from-days) to avoid a date crate for one field.
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Deepest JSON nesting (objects + arrays) accepted anywhere: request bodies, stored documents,
/// files. A flow of `MAX_DEPTH` (64) nodes takes two levels per node (`children`, then the key),
/// so serde_json's fixed limit of 128 would refuse legal flows; 256 leaves room for node data.
pub const MAX_JSON_DEPTH: usize = 256;

/// Why [`parse_json`] refused its input.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Nested deeper than [`MAX_JSON_DEPTH`] (found by a linear scan, before any parsing).
    #[error("recursion limit exceeded: JSON nested deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    /// Not valid JSON.
    #[error("{0}")]
    Syntax(#[from] serde_json::Error),
}

/// The nesting depth of a JSON text, counted iteratively (strings and escapes skipped), stopping
/// as soon as it passes `limit`.
pub fn json_depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses JSON that may be up to [`MAX_JSON_DEPTH`] levels deep. Deeper input is refused by a
/// linear pre-scan, so the (recursive) parser never runs on it: no input can overflow the stack,
/// and a 100,000-level body costs one pass over its bytes.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    if json_depth_exceeds(bytes, MAX_JSON_DEPTH) {
        return Err(JsonError::TooDeep);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_json_is_refused_before_parsing_and_legal_depth_fits_a_small_stack() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse_json::<serde_json::Value>(deep.as_bytes()),
            Err(JsonError::TooDeep)
        ));
        let tricky = format!("[\"{}\"]", "[\\\"".repeat(1000));
        assert!(parse_json::<serde_json::Value>(tricky.as_bytes()).is_ok());
        // The deepest legal document parses (and drops) well within a 256 KiB stack, in a debug
        // build; request handlers run on 2 MiB tokio worker stacks.
        let legal = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_JSON_DEPTH),
            "}".repeat(MAX_JSON_DEPTH)
        );
        let handle = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                let value: serde_json::Value = parse_json(legal.as_bytes()).unwrap();
                let text = serde_json::to_vec(&value).unwrap();
                drop(value);
                text.len()
            })
            .unwrap();
        assert!(handle.join().unwrap() > 0);
        assert!(parse_json::<serde_json::Value>(b"{} x").is_err());
    }

    #[test]
    fn floats_survive_encode_and_parse() {
        // Found by the fuzz properties: without serde_json's `float_roundtrip`, about a third of
        // large floats came back one ULP off after a store round trip.
        for f in [3.0577689124659732e72, 0.1, 1e-300, 123456.789e200, f64::MAX] {
            let text = serde_json::to_vec(&serde_json::json!([f])).unwrap();
            let back: serde_json::Value = parse_json(&text).unwrap();
            assert_eq!(back[0].as_f64(), Some(f));
        }
    }

    #[test]
    fn iso8601_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_710_237_600), "2024-03-12T10:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ids() {
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(is_valid_id(&id));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id(""));
    }
}

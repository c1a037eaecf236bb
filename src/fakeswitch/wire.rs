//! mod_event_socket's wire format, byte for byte: header encoding, frame shapes, and a frame
//! splitter for inspecting what was sent (tests, `simulate`, fixture checks).
//!
//! Everything here was checked against the live captures in
//! `/work/shared/spec/traces/raw/` (FreeSWITCH 1.10.12):
//!
//! * plain event bodies and the `connect` reply percent-encode header *values* exactly like
//!   `switch_url_encode`: a byte below `0x20` or above `~` (so all UTF-8), and the
//!   `SWITCH_URL_UNSAFE` set ``\r\n #%&+:;<=>?@[\]^`{|}"``, become `%XX` (upper-case hex); an
//!   already-encoded `%XX` (upper-case hex digits) passes through unchanged (FreeSWITCH does not
//!   double-encode); header *names* are never encoded; an empty value is written `_undef_`;
//! * `command/reply` frames carry `Reply-Text` raw (not encoded), no Content-Length;
//! * `api/response` and the event frames carry an outer `Content-Length` and `Content-Type` only;
//! * JSON events (`myevents json`) are cJSON objects with every value a string, `ARRAY::a|:b`
//!   values as JSON arrays, repeated headers as repeated keys, and no trailing newline.

use std::fmt::Write as _;

/// FreeSWITCH's goodbye text, sent as the body of every `Content-Disposition: disconnect` notice
/// (67 bytes in the traces).
pub const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// Placeholder FreeSWITCH writes for an empty header value in plain events.
pub const UNDEF: &str = "_undef_";

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `SWITCH_URL_UNSAFE` from switch_utils.h.
fn url_unsafe(b: u8) -> bool {
    matches!(
        b,
        b'\r'
            | b'\n'
            | b' '
            | b'#'
            | b'%'
            | b'&'
            | b'+'
            | b':'
            | b';'
            | b'<'
            | b'='
            | b'>'
            | b'?'
            | b'@'
            | b'['
            | b'\\'
            | b']'
            | b'^'
            | b'`'
            | b'{'
            | b'|'
            | b'}'
            | b'"'
    )
}

fn is_upper_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

/// Appends `value` percent-encoded the way `switch_url_encode` does (see the module doc).
pub fn push_encoded(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    // Fast path: most values (numbers, uuids, codec names) need no escaping at all.
    if bytes
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) && !url_unsafe(b))
    {
        out.push_str(value);
        return;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let already_encoded = b == b'%'
            && i + 2 < bytes.len()
            && is_upper_hex(bytes[i + 1])
            && is_upper_hex(bytes[i + 2]);
        if !already_encoded && (!(b' '..=b'~').contains(&b) || url_unsafe(b)) {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push(b as char);
        }
        i += 1;
    }
}

/// `value` percent-encoded the way FreeSWITCH encodes plain event header values.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    push_encoded(&mut out, value);
    out
}

/// Appends one `Name: value\n` line of a plain event (value encoded, `_undef_` when empty).
pub fn push_plain_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    if value.is_empty() {
        out.push_str(UNDEF);
    } else {
        push_encoded(out, value);
    }
    out.push('\n');
}

/// Appends `value` as a JSON string literal the way cJSON prints it.
pub fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends one `"Name":"value"` member of a JSON event (with the leading comma unless `first`).
/// `ARRAY::a|:b` values become JSON arrays, as FreeSWITCH serializes array headers.
pub fn push_json_member(out: &mut String, first: bool, name: &str, value: &str) {
    if !first {
        out.push(',');
    }
    push_json_string(out, name);
    out.push(':');
    if let Some(items) = value.strip_prefix("ARRAY::") {
        out.push('[');
        for (i, item) in items.split("|:").enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(out, item);
        }
        out.push(']');
    } else {
        push_json_string(out, value);
    }
}

/// A `command/reply` frame: `Content-Type: command/reply\nReply-Text: <text>\n\n`.
pub fn command_reply(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"Content-Type: command/reply\nReply-Text: ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The `bgapi` reply: `Reply-Text: +OK Job-UUID: <u>` plus a separate `Job-UUID` header.
pub fn bgapi_reply(out: &mut Vec<u8>, job_uuid: &str) {
    out.extend_from_slice(b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: ");
    out.extend_from_slice(job_uuid.as_bytes());
    out.extend_from_slice(b"\nJob-UUID: ");
    out.extend_from_slice(job_uuid.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// An `api/response` frame: `Content-Type: api/response\nContent-Length: N\n\n<body>`.
pub fn api_response(out: &mut Vec<u8>, body: &str) {
    let _ = write_len_frame(
        out,
        "Content-Type: api/response\nContent-Length: ",
        body.as_bytes(),
    );
}

fn write_len_frame(out: &mut Vec<u8>, head: &str, body: &[u8]) -> usize {
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(body);
    body.len()
}

/// An event frame around an already-serialized body (`text/event-plain` or `text/event-json`).
pub fn event_frame(out: &mut Vec<u8>, json: bool, body: &str) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    if json {
        out.extend_from_slice(b"\nContent-Type: text/event-json\n\n");
    } else {
        out.extend_from_slice(b"\nContent-Type: text/event-plain\n\n");
    }
    out.extend_from_slice(body.as_bytes());
}

/// The notice FreeSWITCH sends at hangup when `linger` was requested (traces conn01-03, 05, 07-09):
/// `Content-Disposition: linger`, `Channel-Name`, `Linger-Time` (-1 = forever), `Content-Length: 0`.
pub fn linger_notice(out: &mut Vec<u8>, uuid: &str, channel_name: &str, linger_secs: i64) {
    out.extend_from_slice(b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: ");
    out.extend_from_slice(uuid.as_bytes());
    out.extend_from_slice(b"\nContent-Disposition: linger\nChannel-Name: ");
    out.extend_from_slice(channel_name.as_bytes());
    out.extend_from_slice(b"\nLinger-Time: ");
    out.extend_from_slice(linger_secs.to_string().as_bytes());
    out.extend_from_slice(b"\nContent-Length: 0\n\n");
}

/// The notice FreeSWITCH sends right before it closes the socket (after `exit`, at hangup
/// without linger, or when the linger time ran out): `Content-Disposition: disconnect` plus the
/// 67-byte goodbye body.
pub fn disconnect_notice(out: &mut Vec<u8>, uuid: &str) {
    out.extend_from_slice(b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: ");
    out.extend_from_slice(uuid.as_bytes());
    out.extend_from_slice(b"\nContent-Disposition: disconnect\nContent-Length: ");
    out.extend_from_slice(GOODBYE.len().to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(GOODBYE.as_bytes());
}

/// Reverses FreeSWITCH's percent-encoding (`%XX`; anything malformed is kept as is).
pub fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One frame as it travelled on the wire: its outer header block (in order, raw) and the body
/// its `Content-Length` announced. Used to inspect what the fake (or a real switch) sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Outer headers in wire order, values exactly as sent (not decoded).
    pub headers: Vec<(String, String)>,
    /// The bytes after the blank line, as announced by `Content-Length` (empty when absent).
    pub body: Vec<u8>,
}

impl Frame {
    /// First outer header named `name` (exact case, as FreeSWITCH writes them).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Type` of the frame.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// The header lines of a `text/event-plain` body (values still encoded), in order; empty for
    /// other frames. The `connect` reply has no body: its headers are the outer block itself.
    pub fn event_headers(&self) -> Vec<(String, String)> {
        if self.content_type() != Some("text/event-plain") {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&self.body);
        let head = text.split("\n\n").next().unwrap_or_default();
        head.lines()
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(": ") {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect()
    }

    /// `Event-Name` of an event frame (plain or JSON), or of the `connect` reply.
    pub fn event_name(&self) -> Option<String> {
        if let Some(name) = self.header("Event-Name") {
            return Some(name.to_string());
        }
        match self.content_type() {
            Some("text/event-plain") => self
                .event_headers()
                .into_iter()
                .find(|(k, _)| k == "Event-Name")
                .map(|(_, v)| v),
            Some("text/event-json") => serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|v| v.get("Event-Name")?.as_str().map(str::to_string)),
            _ => None,
        }
    }

    /// First header of the event body named `name`, decoded (plain or JSON events).
    pub fn event_header(&self, name: &str) -> Option<String> {
        match self.content_type() {
            Some("text/event-plain") => self
                .event_headers()
                .into_iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| decode(&v)),
            Some("text/event-json") => serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|v| v.get(name)?.as_str().map(str::to_string)),
            _ => self.header(name).map(decode),
        }
    }
}

/// Splits a byte stream into frames. Returns the frames and the number of trailing bytes that do
/// not form a complete frame (a truncated header block or a short body).
pub fn split_frames(data: &[u8]) -> (Vec<Frame>, usize) {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let Some(end) = find_blank_line(&data[pos..]) else {
            break;
        };
        let head = String::from_utf8_lossy(&data[pos..pos + end]).into_owned();
        let headers: Vec<(String, String)> = head
            .split('\n')
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(": ") {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k == "Content-Length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let body_start = pos + end + 2;
        if body_start + len > data.len() {
            break;
        }
        frames.push(Frame {
            headers,
            body: data[body_start..body_start + len].to_vec(),
        });
        pos = body_start + len;
    }
    (frames, data.len() - pos)
}

fn find_blank_line(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_switch_url_encode() {
        // Values copied from trace conn01 (raw value -> wire value).
        assert_eq!(encode("fd00::2"), "fd00%3A%3A2");
        assert_eq!(encode("2026-11-27 10:53:41"), "2026-11-27%2010%3A53%3A41");
        assert_eq!(
            encode("Fri, 27 Nov 2026 10:53:41 GMT"),
            "Fri,%2027%20Nov%202026%2010%3A53%3A41%20GMT"
        );
        assert_eq!(encode("ARRAY::1000|:1000"), "ARRAY%3A%3A1000%7C%3A1000");
        assert_eq!(
            encode("tone_stream://%(200,100,440);loops=2"),
            "tone_stream%3A//%25(200,100,440)%3Bloops%3D2"
        );
        assert_eq!(encode("+OK\n"), "%2BOK%0A");
        assert_eq!(encode("1001@127.0.0.1"), "1001%40127.0.0.1");
        assert_eq!(
            encode("\"SIPp 1001\" <sip:1001@127.0.0.1>;tag=x"),
            "%22SIPp%201001%22%20%3Csip%3A1001%40127.0.0.1%3E%3Btag%3Dx"
        );
        // Not encoded: , / ( ) ' ! * ~ - _ .
        assert_eq!(encode("a,b/c(d)e'f!g*h~i-j_k.l"), "a,b/c(d)e'f!g*h~i-j_k.l");
        // UTF-8 bytes are encoded one by one.
        assert_eq!(encode("é"), "%C3%A9");
        // An existing upper-case %XX is not encoded twice; lower-case is.
        assert_eq!(encode("a%2Bb"), "a%2Bb");
        assert_eq!(encode("a%2bb"), "a%252bb");
        assert_eq!(encode("50%"), "50%25");
        assert_eq!(encode("%A"), "%25A");
    }

    #[test]
    fn decode_round_trips() {
        for s in [
            "fd00::2",
            "tone_stream://%(200,100,440);loops=2",
            "+OK\n",
            "é & ü",
            "",
        ] {
            assert_eq!(decode(&encode(s)), s);
        }
        assert_eq!(decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn json_members_match_cjson() {
        let mut s = String::from("{");
        push_json_member(&mut s, true, "variable_DP_MATCH", "ARRAY::1004|:1004");
        push_json_member(&mut s, false, "A", "x\"y\\z\n");
        s.push('}');
        assert_eq!(
            s,
            r#"{"variable_DP_MATCH":["1004","1004"],"A":"x\"y\\z\n"}"#
        );
    }

    #[test]
    fn splits_frames_and_reports_leftovers() {
        let mut out = Vec::new();
        command_reply(&mut out, "+OK");
        api_response(&mut out, "12\n");
        disconnect_notice(&mut out, "u");
        out.extend_from_slice(b"Content-Length: 10\n\nabc");
        let (frames, rest) = split_frames(&out);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].header("Reply-Text"), Some("+OK"));
        assert_eq!(frames[1].body, b"12\n");
        assert_eq!(frames[2].body, GOODBYE.as_bytes());
        assert_eq!(rest, b"Content-Length: 10\n\nabc".len());
        assert_eq!(GOODBYE.len(), 67);
    }
}

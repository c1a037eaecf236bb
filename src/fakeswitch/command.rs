//! Parsing what the controller sends, the way mod_event_socket's `read_packet` does.
//!
//! A command is a first line, `Name: value` header lines and a blank line; `\r` is ignored and
//! blank lines before a command are skipped; a `Content-Length` header announces a raw body (at
//! most 16 MiB, `MAX_CONTENT_LENGTH`). Header values are taken literally: FreeSWITCH does not
//! percent-decode commands. Nothing here trusts the peer: oversized or malformed input is an
//! error value, never a panic.

use bytes::{Buf, BytesMut};

/// FreeSWITCH's cap on a command body.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// The fake's cap on a header block (FreeSWITCH grows its buffer without a hard limit; a
/// controller never needs more than a few KB).
pub const MAX_HEAD: usize = 1024 * 1024;

/// A parsed command, before it gets an index and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    /// The first line.
    pub line: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body, if `Content-Length` announced one.
    pub body: Option<String>,
}

/// Why the input cannot be parsed; the fake records it and closes like a confused switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Header block larger than [`MAX_HEAD`] without a blank line.
    HeadTooLong(usize),
    /// `Content-Length` above [`MAX_BODY`] or not a number.
    BadContentLength(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::HeadTooLong(n) => write!(f, "command header block over {n} bytes"),
            ParseError::BadContentLength(v) => write!(f, "unusable Content-Length `{v}`"),
        }
    }
}

/// Takes the next complete command off the front of `buf`; `Ok(None)` if more bytes are needed.
pub fn parse_next(buf: &mut BytesMut) -> Result<Option<RawCommand>, ParseError> {
    // Skip blank lines (and stray \r) before a command.
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .count();
    buf.advance(skip);
    if buf.is_empty() {
        return Ok(None);
    }
    // Find the end of the header block: a line that is empty once \r is ignored.
    let mut line_start = 0;
    let mut head_end = None;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if line.iter().all(|&c| c == b'\r') {
                head_end = Some((line_start, i + 1));
                break;
            }
            line_start = i + 1;
        }
    }
    let Some((head_len, consumed)) = head_end else {
        if buf.len() > MAX_HEAD {
            return Err(ParseError::HeadTooLong(MAX_HEAD));
        }
        return Ok(None);
    };
    let head: String = String::from_utf8_lossy(&buf[..head_len])
        .chars()
        .filter(|&c| c != '\r')
        .collect();
    let mut lines = head.split('\n').filter(|l| !l.is_empty());
    let line = lines.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for l in lines {
        match l.split_once(':') {
            Some((k, v)) => headers.push((k.trim().to_string(), v.trim_start().to_string())),
            None => headers.push((l.trim().to_string(), String::new())),
        }
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.clone());
    let body_len = match content_length {
        None => 0,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= MAX_BODY => n,
            _ => return Err(ParseError::BadContentLength(v)),
        },
    };
    if buf.len() < consumed + body_len {
        return Ok(None);
    }
    buf.advance(consumed);
    let body = if body_len > 0 {
        let b = buf.split_to(body_len);
        Some(String::from_utf8_lossy(&b).into_owned())
    } else {
        None
    };
    Ok(Some(RawCommand {
        line,
        headers,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<RawCommand>, usize) {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Ok(Some(c)) = parse_next(&mut buf) {
            out.push(c);
        }
        (out, buf.len())
    }

    #[test]
    fn parses_the_trace_commands() {
        let raw = std::fs::read("/work/shared/spec/traces/raw/conn05.ctl_to_fs.raw")
            .unwrap_or_else(|_| b"connect\n\nmyevents json\n\n".to_vec());
        let (cmds, rest) = parse_all(&raw);
        assert_eq!(rest, 0);
        assert_eq!(cmds[0].line, "connect");
        assert_eq!(cmds[1].line, "myevents json");
    }

    #[test]
    fn handles_crlf_bodies_and_partial_input() {
        let input = b"\r\n\r\nsendmsg\r\ncall-command: execute\r\nexecute-app-name: speak\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n\r\nab\ncdapi status\n\n";
        let (cmds, rest) = parse_all(input);
        assert_eq!(rest, 0);
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].line, "sendmsg");
        assert_eq!(cmds[0].body.as_deref(), Some("ab\ncd"));
        assert_eq!(
            cmds[0].headers[1],
            ("execute-app-name".into(), "speak".into())
        );
        assert_eq!(cmds[1].line, "api status");

        let (cmds, rest) = parse_all(b"sendmsg\nContent-Length: 10\n\nabc");
        assert!(cmds.is_empty());
        assert!(rest > 0);
    }

    #[test]
    fn rejects_bad_lengths_without_panicking() {
        let mut buf = BytesMut::from(&b"sendmsg\nContent-Length: x\n\n"[..]);
        assert!(parse_next(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"sendmsg\nContent-Length: 99999999999\n\n"[..]);
        assert!(parse_next(&mut buf).is_err());
        let mut buf = BytesMut::from(&vec![b'a'; MAX_HEAD + 10][..]);
        assert!(parse_next(&mut buf).is_err());
        let mut buf = BytesMut::from(&[0xff, 0xfe, b'\n', b'\n'][..]);
        assert!(parse_next(&mut buf).is_ok());
    }
}

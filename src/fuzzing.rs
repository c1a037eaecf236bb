//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the property tests
//! (`tests/fuzz_properties.rs`), so both exercise exactly the same code.
//!
//! * [`callflow_json`]: bytes -> the API's body parser (with its depth pre-scan) -> callflow
//!   validation -> PATCH deep merge with a second body -> validation again. Must never panic, and
//!   what validation accepts must survive the store's own encode/decode round trip and validate
//!   again unchanged (the store would otherwise keep a document it cannot read back).
//! * [`esl_session`]: bytes -> a fake FreeSWITCH peer that answers `connect` correctly and then
//!   replays the bytes, frame by frame, into a real engine session ([`run_session`]) over a
//!   loopback socket. The session must end (no hang), without a panic, leaving no task behind.

use crate::api::envelope::parse_envelope;
use crate::callflow::merge::deep_merge;
use crate::callflow::validate::validate_callflow;
use crate::documents::client_fields;
use crate::engine::session::{SessionEnd, SessionOptions, run_session};
use crate::engine::{EngineConfig, EngineContext};
use crate::fakeswitch::{Channel, ChannelProfile};
use crate::store::Account;
use crate::store::memory::MemStore;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Separates the document from the PATCH body in a [`callflow_json`] input (JSON text never
/// holds a raw NUL byte).
pub const PATCH_SEPARATOR: u8 = 0;

/// What [`callflow_json`] got to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonOutcome {
    /// The document body parsed (envelope and depth pre-scan passed).
    pub parsed: bool,
    /// The document validated.
    pub valid: bool,
    /// A PATCH body parsed and was merged.
    pub merged: bool,
    /// The merged document validated.
    pub merged_valid: bool,
}

/// Parses a request body as the API does and keeps its public client fields.
fn body_fields(bytes: &[u8]) -> Option<Map<String, Value>> {
    let data = parse_envelope(bytes).ok()?;
    client_fields(data).ok()
}

/// A document validation accepted must be storable: encoded and decoded by the store's own
/// functions it is unchanged, and it validates again to itself (defaults already written).
fn check_accepted(doc: &Map<String, Value>) {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let back: Map<String, Value> = match crate::util::parse_json(&bytes) {
        Ok(back) => back,
        Err(e) => panic!("validated document cannot be read back: {e}"),
    };
    assert_eq!(
        &back, doc,
        "validated document changed through encode/decode"
    );
    let mut again = back;
    if let Err(errors) = validate_callflow(&mut again) {
        panic!(
            "validated document fails validation again: {}",
            errors.to_json()
        );
    }
    assert_eq!(&again, doc, "validation is not idempotent");
}

/// Runs one fuzz input through parse -> validate -> PATCH merge -> validate. The input is the
/// document body, optionally followed by [`PATCH_SEPARATOR`] and a PATCH body (both are request
/// bodies: `{"data": {...}}`). Panics only on a bug.
pub fn callflow_json(input: &[u8]) -> JsonOutcome {
    let (doc_bytes, patch_bytes) = match input.iter().position(|b| *b == PATCH_SEPARATOR) {
        Some(at) => (&input[..at], Some(&input[at + 1..])),
        None => (input, None),
    };
    let mut outcome = JsonOutcome::default();
    let Some(mut doc) = body_fields(doc_bytes) else {
        return outcome;
    };
    outcome.parsed = true;
    outcome.valid = validate_callflow(&mut doc).is_ok();
    if outcome.valid {
        check_accepted(&doc);
    }
    let Some(changes) = patch_bytes.and_then(body_fields) else {
        return outcome;
    };
    // The API merges onto a stored (valid) document; merging onto an invalid one must not
    // panic either.
    deep_merge(&mut doc, changes);
    outcome.merged = true;
    outcome.merged_valid = validate_callflow(&mut doc).is_ok();
    if outcome.merged_valid {
        check_accepted(&doc);
    }
    outcome
}

/// The account the fuzzed channel names (`variable_account_id` of [`ChannelProfile::sip`]).
pub const ESL_ACCOUNT: &str = "00000000000000000000000000000001";
/// The number the fuzzed channel dials.
pub const ESL_NUMBER: &str = "1000";

/// An engine over an in-memory store whose callflow on [`ESL_NUMBER`] answers, plays, collects
/// digits in a menu-like branch and hangs up; short timeouts so a silent peer costs little.
/// Build it once and share it across inputs.
pub fn esl_engine() -> Arc<EngineContext> {
    let store = Arc::new(MemStore::new());
    store.add_account(Account {
        id: ESL_ACCOUNT.into(),
        name: "fuzz".into(),
        realm: Some("127.0.0.1".into()),
    });
    let mut flow = json!({"module": "answer", "data": {}, "children": {"_": {
        "module": "play", "data": {"id": "tone_stream://%(200,0,500)"}, "children": {"_": {
            "module": "collect_dtmf", "data": {"max_digits": 1, "timeout": 1}, "children": {"_": {
                "module": "hangup", "data": {}}}}}}}});
    let mut errors = crate::callflow::errors::FieldErrors::new();
    crate::modules::validate_flow(&mut flow, "flow", &mut errors);
    if !errors.is_empty() {
        // Fall back to the simplest flow rather than fuzzing a rejected one.
        flow = json!({"module": "answer", "data": {}});
    }
    store.put(
        ESL_ACCOUNT,
        "callflows",
        "f0000000000000000000000000000001",
        json!({"numbers": [ESL_NUMBER], "flow": flow}),
    );
    let config = EngineConfig {
        command_timeout: Duration::from_millis(300),
        setup_timeout: Duration::from_millis(300),
        call_deadline: Duration::from_secs(3),
        linger: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
        ..EngineConfig::default()
    };
    EngineContext::new(config, store)
}

/// How an [`esl_session`] ended.
#[derive(Debug)]
pub struct EslOutcome {
    /// The engine's verdict on the session.
    pub end: SessionEnd,
    /// Tasks still alive on the runtime after the session and the peer finished (must be 0 on
    /// a runtime that ran nothing else).
    pub tasks_left: usize,
    /// Bytes of the input the peer wrote before the engine closed.
    pub written: usize,
}

/// Length of the first frame of `buf`: the header block up to a blank line plus a
/// `Content-Length` body when the header names one that fits, else the header block alone; no
/// blank line: the whole rest.
pub fn first_frame_len(buf: &[u8]) -> usize {
    let Some(end) = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2) else {
        return buf.len();
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let body = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if body <= buf.len() - end {
        end + body
    } else {
        end
    }
}

/// Whether a frame answers a command (`command/reply` or `api/response`).
fn is_reply(frame: &[u8]) -> bool {
    let head_end = frame
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(frame.len());
    let head = &frame[..head_end];
    head.windows(13).any(|w| w == b"command/reply")
        || head.windows(12).any(|w| w == b"api/response")
}

/// The peer: waits for `connect`, answers it, then replays `payload`: on each command from the
/// engine it writes frames up to and including the next reply, and when the engine is quiet it
/// writes one more frame; at the end it closes its side and drains until the engine closes.
async fn peer(mut stream: TcpStream, payload: Vec<u8>) -> usize {
    let mut read = vec![0u8; 16 * 1024];
    let mut seen = Vec::new();
    // `connect\n\n` first (the engine sends nothing else before its reply).
    let connected = tokio::time::timeout(Duration::from_secs(2), async {
        while !seen.windows(2).any(|w| w == b"\n\n") {
            match stream.read(&mut read).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&read[..n]),
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    if !connected {
        return 0;
    }
    let mut profile = ChannelProfile::sip(ESL_NUMBER);
    profile.uuid = "3dd31568-4ef5-4f6f-84ee-f670d6501994".into();
    let mut reply = Vec::with_capacity(8 * 1024);
    Channel::new(&profile).render_connect_reply(&mut reply);
    if stream.write_all(&reply).await.is_err() {
        return 0;
    }
    let mut at = 0usize;
    let mut engine_open = true;
    while at < payload.len() && engine_open {
        let release_to_reply = tokio::select! {
            r = stream.read(&mut read) => match r {
                Ok(0) | Err(_) => { engine_open = false; false }
                Ok(_) => true,
            },
            _ = tokio::time::sleep(Duration::from_millis(2)) => false,
        };
        if !engine_open {
            break;
        }
        loop {
            let len = first_frame_len(&payload[at..]).max(1);
            let frame = &payload[at..at + len];
            if stream.write_all(frame).await.is_err() {
                engine_open = false;
                break;
            }
            at += len;
            if !release_to_reply || is_reply(frame) || at >= payload.len() {
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
    // Drain until the engine closes (it must, now that our side is closed).
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut read).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    at
}

/// Runs one engine session against a peer replaying `payload` (see [`peer`]) on the current
/// runtime. Panics if the session does not end within 20 s (a hang is a bug too).
pub async fn esl_session(ctx: Arc<EngineContext>, payload: &[u8]) -> EslOutcome {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a loopback listener: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("no local address: {e}"),
    };
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, server) = match (client, accepted) {
        (Ok(c), Ok((s, _))) => (c, s),
        (c, s) => panic!("loopback pair failed: {:?} / {:?}", c.err(), s.err()),
    };
    drop(listener);
    let payload = payload.to_vec();
    let peer_task = tokio::spawn(peer(client, payload));
    let report = match tokio::time::timeout(
        Duration::from_secs(20),
        run_session(server, ctx, SessionOptions::default()),
    )
    .await
    {
        Ok(report) => report,
        Err(_) => panic!("engine session did not end within 20 s"),
    };
    let written = peer_task.await.unwrap_or(0);
    // The client's reader task ends right after the socket closes.
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut tasks_left = metrics.num_alive_tasks();
    for _ in 0..200 {
        if tasks_left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        tasks_left = metrics.num_alive_tasks();
    }
    EslOutcome {
        end: report.end,
        tasks_left,
        written,
    }
}

/// [`esl_session`] on a fresh current-thread runtime (one per input, as the fuzz target runs
/// it). Panics if the session panicked, hung, or left a task behind.
pub fn esl_session_blocking(ctx: Arc<EngineContext>, payload: &[u8]) -> EslOutcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a runtime: {e}"),
    };
    let outcome = runtime.block_on(esl_session(ctx, payload));
    assert_eq!(
        outcome.tasks_left, 0,
        "session left tasks behind: {outcome:?}"
    );
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_on_blank_lines_and_content_length() {
        let two = b"Content-Type: command/reply\nReply-Text: +OK\n\nContent-Length: 3\nContent-Type: text/event-plain\n\nabcX";
        let first = first_frame_len(two);
        assert!(is_reply(&two[..first]));
        assert_eq!(first_frame_len(&two[first..]), two.len() - first - 1);
        assert_eq!(first_frame_len(b"no blank line"), 13);
        assert_eq!(first_frame_len(b"Content-Length: 99\n\nshort"), 20);
    }

    #[test]
    fn a_valid_callflow_and_patch_go_all_the_way() {
        let input = b"{\"data\":{\"numbers\":[\"1\"],\"flow\":{\"module\":\"answer\",\"data\":{}}}}\0{\"data\":{\"name\":\"x\"}}";
        let outcome = callflow_json(input);
        assert!(
            outcome.valid && outcome.merged && outcome.merged_valid,
            "{outcome:?}"
        );
    }
}

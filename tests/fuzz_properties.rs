//! The CI form of the fuzz targets (issue 7, part 4): proptest drives the same entry points as
//! `fuzz/` (`callflowd::fuzzing`) with arbitrary JSON trees (deep nesting, huge strings, wrong
//! types at known keys, raw bytes) and arbitrary or mutated ESL frames (the real captures in
//! /work/shared/spec/traces/raw when present, frames built with the fake switch's encoder
//! always). No input may panic, hang an engine session or leave a task behind.
//!
//! `PROPTEST_CASES=N` scales every property (defaults keep the whole file well under a minute).

use callflowd::engine::EngineContext;
use callflowd::fakeswitch::wire;
use callflowd::fuzzing::{
    PATCH_SEPARATOR, callflow_json, esl_engine, esl_session_blocking, first_frame_len,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::{Arc, OnceLock};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Callflow JSON: parse -> validate -> PATCH merge -> validate.

const KEYS: &[&str] = &[
    "numbers",
    "patterns",
    "flow",
    "module",
    "data",
    "children",
    "_",
    "name",
    "id",
    "metadata",
    "pvt_x",
    "_rev",
    "featurecode",
    "flags",
    "contact_list",
    "ui_metadata",
    "1",
    "timeout",
    "max_digits",
    "id",
    "answer",
    "endless_playback",
    "ring_group",
    "endpoints",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn module_name() -> impl Strategy<Value = String> {
    let names: Vec<String> = callflowd::modules::names().map(str::to_string).collect();
    prop_oneof![
        6 => proptest::sample::select(names),
        1 => ".{0,10}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        // Numbers and patterns the validator compiles.
        "[0-9+*#]{0,12}".prop_map(Value::String),
        "\\^?[\\\\()\\[\\]{}*+?|.0-9a-z$]{0,16}".prop_map(Value::String),
        // Huge strings.
        (1usize..200_000).prop_map(|n| Value::String("x".repeat(n))),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(8, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A flow node that often passes the module check, with arbitrary data and children.
fn node() -> impl Strategy<Value = Value> {
    let leaf_node = (module_name(), tree()).prop_map(|(m, d)| json!({"module": m, "data": d}));
    leaf_node.prop_recursive(6, 40, 4, |inner| {
        (
            module_name(),
            tree(),
            prop::collection::vec(("[_0-9a-z]{1,3}", inner), 0..4),
        )
            .prop_map(|(m, d, children)| {
                let children: Map<String, Value> = children.into_iter().collect();
                json!({"module": m, "data": d, "children": children})
            })
    })
}

/// Callflow-shaped documents with wrong types mixed in.
fn callflow_doc() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            prop::collection::vec("[0-9]{1,8}", 0..4).prop_map(|v| json!(v)),
            tree()
        ],
        prop_oneof![
            prop::collection::vec("\\^[0-9*]{0,4}(\\(\\\\d\\+\\))?\\$", 0..3)
                .prop_map(|v| json!(v)),
            tree()
        ],
        prop_oneof![3 => node(), 1 => tree()],
        prop::collection::vec((key(), tree()), 0..3),
    )
        .prop_map(|(numbers, patterns, flow, extra)| {
            let mut doc = Map::new();
            doc.insert("numbers".into(), numbers);
            doc.insert("patterns".into(), patterns);
            doc.insert("flow".into(), flow);
            for (k, v) in extra {
                doc.insert(k, v);
            }
            Value::Object(doc)
        })
}

fn body(data: &Value) -> Vec<u8> {
    json!({ "data": data }).to_string().into_bytes()
}

fn joined(doc: &[u8], patch: &[u8]) -> Vec<u8> {
    let mut input = doc.to_vec();
    input.push(PATCH_SEPARATOR);
    input.extend_from_slice(patch);
    input
}

/// `depth` levels of mixed `[` and `{"k":` around a value, as raw text.
fn nested(depth: usize, pattern: u64) -> Vec<u8> {
    let mut open = Vec::new();
    let mut close = Vec::new();
    for level in 0..depth {
        if (pattern >> (level % 64)) & 1 == 1 {
            open.extend_from_slice(b"{\"flow\":");
            close.push(b'}');
        } else {
            open.push(b'[');
            close.push(b']');
        }
    }
    let mut out = b"{\"data\":{\"numbers\":[\"1\"],\"flow\":".to_vec();
    out.extend_from_slice(&open);
    out.extend_from_slice(b"1");
    close.reverse();
    out.extend_from_slice(&close);
    out.extend_from_slice(b"}}");
    out
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn callflow_documents_and_patches_never_panic(doc in callflow_doc(), patch in callflow_doc()) {
        callflow_json(&joined(&body(&doc), &body(&patch)));
    }

    #[test]
    fn arbitrary_json_trees_never_panic(doc in tree(), patch in tree()) {
        callflow_json(&joined(&body(&doc), &body(&patch)));
        // The tree as the whole body (not an envelope), too.
        callflow_json(doc.to_string().as_bytes());
    }

    #[test]
    fn deep_nesting_is_refused_or_handled(depth in 0usize..2_000, pattern in any::<u64>(), patch_depth in 0usize..400) {
        let outcome = callflow_json(&joined(&nested(depth, pattern), &nested(patch_depth, !pattern)));
        // The envelope and `data` add two levels around the flow.
        prop_assert_eq!(outcome.parsed, depth + 2 <= callflowd::util::MAX_JSON_DEPTH);
    }

    #[test]
    fn raw_and_mutated_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        doc in callflow_doc(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        callflow_json(&bytes);
        let mut text = body(&doc);
        if !text.is_empty() {
            for (at, byte) in flips {
                let i = at.index(text.len());
                text[i] = byte;
            }
        }
        callflow_json(&text);
    }
}

// ---------------------------------------------------------------------------------------------
// ESL frames into a real engine session.

fn engine() -> Arc<EngineContext> {
    static ENGINE: OnceLock<Arc<EngineContext>> = OnceLock::new();
    ENGINE.get_or_init(esl_engine).clone()
}

const EVENTS: &[&str] = &[
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "DTMF",
    "CHANNEL_STATE",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_DATA",
    "PLAYBACK_STOP",
    "CUSTOM",
];

const UUID: &str = "3dd31568-4ef5-4f6f-84ee-f670d6501994";

/// One frame in FreeSWITCH's wire format (built with the fake switch's encoder), sometimes
/// with a lying Content-Length or raw garbage.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let header = (
        prop_oneof![
            proptest::sample::select(
                &[
                    "Application",
                    "Application-UUID",
                    "Application-Response",
                    "Unique-ID",
                    "DTMF-Digit",
                    "Hangup-Cause",
                    "variable_current_application",
                    "Content-Length",
                    "Event-Name",
                    "Answer-State",
                    "Channel-State",
                ][..]
            )
            .prop_map(str::to_string),
            "[A-Za-z-]{1,12}",
        ],
        prop_oneof![Just(UUID.to_string()), ".{0,24}", "[0-9]{1,6}"],
    );
    prop_oneof![
        3 => prop_oneof![Just("+OK"), Just("+OK Events Enabled"), Just("-ERR nope"), Just("+OK will linger"), Just("")]
            .prop_map(|text| { let mut out = Vec::new(); wire::command_reply(&mut out, text); out }),
        4 => (proptest::sample::select(EVENTS), prop::collection::vec(header, 0..8), any::<bool>())
            .prop_map(|(name, headers, json_body)| {
                let body = if json_body {
                    let mut m = Map::new();
                    m.insert("Event-Name".into(), Value::String(name.to_string()));
                    m.insert("Unique-ID".into(), Value::String(UUID.into()));
                    for (k, v) in headers { m.insert(k, Value::String(v)); }
                    Value::Object(m).to_string()
                } else {
                    let mut s = String::new();
                    wire::push_plain_header(&mut s, "Event-Name", name);
                    wire::push_plain_header(&mut s, "Unique-ID", UUID);
                    for (k, v) in &headers { wire::push_plain_header(&mut s, k, v); }
                    s.push('\n');
                    s
                };
                let mut out = Vec::new();
                wire::event_frame(&mut out, json_body, &body);
                out
            }),
        1 => ".{0,64}".prop_map(|b| { let mut out = Vec::new(); wire::api_response(&mut out, &b); out }),
        1 => Just(()).prop_map(|_| { let mut out = Vec::new(); wire::linger_notice(&mut out, UUID, "sofia/x", 1); out }),
        1 => Just(()).prop_map(|_| { let mut out = Vec::new(); wire::disconnect_notice(&mut out, UUID); out }),
        1 => (0usize..10_000_000, ".{0,32}").prop_map(|(n, b)| format!("Content-Length: {n}\nContent-Type: text/event-plain\n\n{b}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// The controller-bound side of the real captures, without their connect reply (the harness
/// sends its own).
fn traces() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new("/work/shared/spec/traces/raw");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!(
            "no captures under {}: mutating built-in frames only",
            dir.display()
        );
        return Vec::new();
    };
    let mut out: Vec<Vec<u8>> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".fs_to_ctl.raw"))
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| bytes[first_frame_len(&bytes)..].to_vec())
        .collect();
    out.sort();
    out
}

fn mutate(mut bytes: Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    for (at, kind, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at.index(bytes.len());
        match kind % 6 {
            0 => bytes[i] = *byte,
            1 => bytes.truncate(i),
            2 => bytes.insert(i, *byte),
            3 => {
                // Repeat a stretch (duplicated frames, events after hangup).
                let end = (i + 1 + *byte as usize * 8).min(bytes.len());
                let copy = bytes[i..end].to_vec();
                bytes.splice(i..i, copy);
            }
            4 => {
                // A digit becomes another: Content-Length and numbers lie.
                if let Some(j) = bytes[i..].iter().position(u8::is_ascii_digit) {
                    bytes[i + j] = b'0' + byte % 10;
                }
            }
            _ => {
                let end = (i + *byte as usize).min(bytes.len());
                bytes.drain(i..end);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn arbitrary_bytes_into_a_session(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        esl_session_blocking(engine(), &bytes);
    }

    #[test]
    fn arbitrary_frames_into_a_session(frames in prop::collection::vec(frame(), 0..24)) {
        esl_session_blocking(engine(), &frames.concat());
    }

    #[test]
    fn mutated_captures_into_a_session(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..12),
        frames in prop::collection::vec(frame(), 0..6),
    ) {
        static TRACES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let traces = TRACES.get_or_init(traces);
        let base = if traces.is_empty() {
            frames.concat()
        } else {
            let mut t = traces[pick.index(traces.len())].clone();
            t.extend(frames.concat());
            t
        };
        esl_session_blocking(engine(), &mutate(base, &edits));
    }
}

#[test]
fn every_capture_replays_into_a_session() {
    for trace in traces() {
        let outcome = esl_session_blocking(engine(), &trace);
        println!("{} bytes -> {:?}", trace.len(), outcome.end);
    }
}

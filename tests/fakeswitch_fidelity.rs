//! Fidelity of the fake FreeSWITCH against the live captures in /work/shared/spec/traces.
//!
//! Each capture is replayed: the exact controller bytes of `raw/connNN.ctl_to_fs.raw` are sent
//! to the fake, each command only once the fake has written as many frames as FreeSWITCH had
//! written before that command in the annotated trace. Then the fake's frames are compared
//! with `raw/connNN.fs_to_ctl.raw`: same sequence of replies / events / notices (event name,
//! app, response, states, cause), same header names in the same order, same bytes for the
//! deterministic replies, same encoding for equal values. CHANNEL_PARK is left out on both
//! sides: whether it reaches the controller is a race on the real switch (README point 5).

use bytes::BytesMut;
use callflowd::fakeswitch::command::parse_next;
use callflowd::fakeswitch::wire::{self, Frame, split_frames};
use callflowd::fakeswitch::{CallScript, ChannelProfile, Transcript, dial};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TRACES: &str = "/work/shared/spec/traces";

fn have_traces() -> bool {
    let ok = Path::new(TRACES).join("outbound-1.10.12.txt").exists();
    if !ok {
        eprintln!("traces not found under {TRACES}; skipping");
    }
    ok
}

struct TraceConn {
    commands: Vec<Vec<u8>>,
    /// FreeSWITCH frames (CHANNEL_PARK excluded) written before each command.
    frames_before: Vec<usize>,
    /// FreeSWITCH frames, CHANNEL_PARK excluded.
    frames: Vec<Frame>,
}

fn is_park(f: &Frame) -> bool {
    f.event_name().as_deref() == Some("CHANNEL_PARK")
}

fn load(n: usize) -> TraceConn {
    let raw_ctl = std::fs::read(format!("{TRACES}/raw/conn{n:02}.ctl_to_fs.raw")).expect("ctl");
    let raw_fs = std::fs::read(format!("{TRACES}/raw/conn{n:02}.fs_to_ctl.raw")).expect("fs");
    let mut buf = BytesMut::from(&raw_ctl[..]);
    let mut commands = Vec::new();
    let mut pos = 0;
    while let Ok(Some(_)) = parse_next(&mut buf) {
        let consumed = raw_ctl.len() - buf.len();
        commands.push(raw_ctl[pos..consumed].to_vec());
        pos = consumed;
    }
    let (all, rest) = split_frames(&raw_fs);
    assert_eq!(rest, 0, "conn{n:02}: trailing bytes in the capture");
    let frames: Vec<Frame> = all.into_iter().filter(|f| !is_park(f)).collect();
    // Interleaving from the annotated trace.
    let text = std::fs::read_to_string(format!("{TRACES}/outbound-1.10.12.txt")).expect("trace");
    let tag = format!("conn#{n} ");
    let mut frames_before = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        if !line.contains(&tag) {
            continue;
        }
        if line.starts_with(">>>>> [") && line.contains("CONTROLLER -> FS") {
            frames_before.push(count);
        } else if line.starts_with("<<<<< [")
            && line.contains("FS -> CONTROLLER")
            && !line.contains("Event-Name=CHANNEL_PARK")
        {
            count += 1;
        }
    }
    assert_eq!(
        frames_before.len(),
        commands.len(),
        "conn{n:02}: command count"
    );
    assert_eq!(count, frames.len(), "conn{n:02}: frame count");
    TraceConn {
        commands,
        frames_before,
        frames,
    }
}

/// Replays a capture's controller side against the fake. Returns the fake's frames and its
/// transcript. `close_at_end`: the controller closes the socket after its last command once
/// the fake has written as many frames as FreeSWITCH did (conn06).
async fn replay(script: CallScript, t: &TraceConn, close_at_end: bool) -> (Vec<Frame>, Transcript) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(dial(addr, script));
    let (stream, _) = listener.accept().await.expect("accept");
    let (mut rd, mut wr) = stream.into_split();
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = received.clone();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 65536];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.lock().expect("lock").extend_from_slice(&buf[..n]),
            }
        }
    });
    let frame_count = |received: &Arc<Mutex<Vec<u8>>>| {
        let data = received.lock().expect("lock").clone();
        split_frames(&data)
            .0
            .into_iter()
            .filter(|f| !is_park(f))
            .count()
    };
    let wait_frames = |want: usize, what: String| {
        let received = received.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let have = frame_count(&received);
                if have >= want {
                    return;
                }
                if tokio::time::Instant::now() > deadline {
                    let data = received.lock().expect("lock").clone();
                    let sigs: Vec<String> = split_frames(&data).0.iter().map(sig).collect();
                    panic!("{what}: waited for {want} frames, got {have}: {sigs:#?}");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    for (k, cmd) in t.commands.iter().enumerate() {
        wait_frames(
            t.frames_before[k],
            format!("before command {k} ({:?})", String::from_utf8_lossy(cmd)),
        )
        .await;
        wr.write_all(cmd).await.expect("write");
    }
    if close_at_end {
        wait_frames(t.frames.len(), "before closing".into()).await;
        drop(wr);
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    } else {
        // The fake closes by itself (exit, no linger, linger N).
        tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("the fake closes the connection")
            .expect("reader");
        drop(wr);
    }
    let transcript = tokio::time::timeout(Duration::from_secs(20), fake)
        .await
        .expect("fake ends")
        .expect("join")
        .expect("dial");
    let data = received.lock().expect("lock").clone();
    let (frames, rest) = split_frames(&data);
    assert_eq!(rest, 0, "the fake left a partial frame");
    (frames, transcript)
}

/// A comparable summary of a frame.
fn sig(f: &Frame) -> String {
    match f.content_type() {
        Some("command/reply") if f.header("Event-Name").is_some() => "connect-reply".into(),
        Some("command/reply") => format!("reply:{}", f.header("Reply-Text").unwrap_or("?")),
        Some("api/response") => {
            let body = String::from_utf8_lossy(&f.body).to_string();
            if body.trim().chars().all(|c| c.is_ascii_digit()) {
                "api:<uptime>".into()
            } else {
                format!("api:{body:?}")
            }
        }
        Some("text/disconnect-notice") => {
            format!("notice:{}", f.header("Content-Disposition").unwrap_or("?"))
        }
        Some(_) => {
            let mut s = format!("event:{}", f.event_name().unwrap_or_default());
            for h in [
                "Application",
                "Application-Data",
                "Application-Response",
                "Channel-State",
                "Channel-Call-State",
                "Answer-State",
                "Hangup-Cause",
                "DTMF-Digit",
                "Job-Command",
            ] {
                if let Some(v) = f.event_header(h) {
                    s.push_str(&format!(" {h}={v}"));
                }
            }
            s
        }
        None => "?".into(),
    }
}

fn event_names_and_vars(f: &Frame) -> (Vec<String>, Vec<String>) {
    let headers: Vec<String> = if f.content_type() == Some("text/event-json") {
        // Keys in order (serde_json keeps order with preserve_order; duplicates collapse, so
        // compare JSON by a hand split of the top-level keys).
        json_keys(&f.body)
    } else if f.content_type() == Some("text/event-plain") {
        f.event_headers().into_iter().map(|(k, _)| k).collect()
    } else {
        f.headers.iter().map(|(k, _)| k.clone()).collect()
    };
    let (vars, rest): (Vec<String>, Vec<String>) = headers
        .into_iter()
        .partition(|k| k.starts_with("variable_"));
    (rest, vars)
}

/// Top-level keys of a flat JSON object, in order, duplicates kept.
fn json_keys(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut in_str = false;
    let mut escaped = false;
    let mut cur = String::new();
    let mut expect_key = true;
    for c in text.chars() {
        if in_str {
            if escaped {
                escaped = false;
                cur.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                if depth == 1 && expect_key {
                    keys.push(cur.clone());
                    expect_key = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                cur.clear();
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 1 => expect_key = true,
            _ => {}
        }
    }
    keys
}

fn compare(n: usize, t: &TraceConn, fake: &[Frame], strict_vars: bool) {
    let want: Vec<String> = t.frames.iter().map(sig).collect();
    let got: Vec<String> = fake.iter().map(sig).collect();
    assert_eq!(got, want, "conn{n:02}: frame sequence differs");
    for (i, (a, b)) in t.frames.iter().zip(fake).enumerate() {
        let (names_a, vars_a) = event_names_and_vars(a);
        let (names_b, vars_b) = event_names_and_vars(b);
        assert_eq!(
            names_b, names_a,
            "conn{n:02} frame {i} ({}): header names differ",
            want[i]
        );
        if strict_vars {
            assert_eq!(
                vars_b, vars_a,
                "conn{n:02} frame {i} ({}): variables differ",
                want[i]
            );
        }
    }
}

fn loopback_script(n: usize, uuid: &str, dest: &str) -> CallScript {
    let _ = n;
    CallScript::new(dest)
        .loopback()
        .uuid(uuid)
        .media_time(Duration::from_millis(600))
}

fn trace_uuid(t: &TraceConn) -> String {
    t.frames[0]
        .header("Unique-ID")
        .expect("connect reply has Unique-ID")
        .to_string()
}

#[tokio::test]
async fn conn01_answer_playback_hangup_linger_exit() {
    if !have_traces() {
        return;
    }
    let t = load(1);
    let script = loopback_script(1, &trace_uuid(&t), "1000");
    let (frames, tr) = replay(script, &t, false).await;
    compare(1, &t, &frames, true);
    // Deterministic frames, byte for byte: every reply and both notices.
    for (a, b) in t.frames.iter().zip(&frames) {
        match a.content_type() {
            Some("command/reply") if a.header("Event-Name").is_none() => {
                assert_eq!(a, b)
            }
            Some("text/disconnect-notice") => assert_eq!(a, b),
            _ => {}
        }
    }
    assert_eq!(tr.hangup_cause(), Some("NORMAL_CLEARING"));
    assert_eq!(tr.linger, Some(-1));
}

#[tokio::test]
async fn conn02_unknown_app_destination_out_of_order() {
    if !have_traces() {
        return;
    }
    let t = load(2);
    let script = loopback_script(2, &trace_uuid(&t), "1001");
    let (frames, tr) = replay(script, &t, false).await;
    compare(2, &t, &frames, true);
    assert_eq!(tr.hangup_cause(), Some("DESTINATION_OUT_OF_ORDER"));
}

#[tokio::test]
async fn conn03_caller_hangs_up_mid_playback() {
    if !have_traces() {
        return;
    }
    let t = load(3);
    let script = loopback_script(3, &trace_uuid(&t), "1002")
        .file_duration("loops=30", Duration::from_secs(30))
        .hangup_after(Duration::from_millis(1500));
    let (frames, tr) = replay(script, &t, false).await;
    compare(3, &t, &frames, true);
    assert_eq!(
        tr.skipped.len(),
        1,
        "the sendmsg on the dead channel did nothing"
    );
}

#[tokio::test]
async fn conn04_no_linger_call_command_hangup() {
    if !have_traces() {
        return;
    }
    let t = load(4);
    let script = loopback_script(4, &trace_uuid(&t), "1003");
    let (frames, tr) = replay(script, &t, false).await;
    compare(4, &t, &frames, true);
    assert_eq!(
        frames.last(),
        t.frames.last(),
        "disconnect notice, byte for byte"
    );
    assert_eq!(tr.linger, None);
}

#[tokio::test]
async fn conn05_json_linger3_getvar_api_bgapi() {
    if !have_traces() {
        return;
    }
    let t = load(5);
    // The three executes are pipelined; FreeSWITCH's park loop noticed them ~20 ms later, so
    // all three `+OK` came before the first EXECUTE. A long delay keeps that order on a busy
    // machine.
    let script =
        loopback_script(5, &trace_uuid(&t), "1004").app_start_delay(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (frames, _tr) = replay(script, &t, false).await;
    compare(5, &t, &frames, true);
    // `linger 3`: the switch closes ~3.5 s after the linger notice.
    assert!(started.elapsed() >= Duration::from_secs(3));
    for (a, b) in t.frames.iter().zip(&frames) {
        if a.content_type() == Some("command/reply") && a.header("Event-Name").is_none() {
            assert_eq!(a, b, "reply bytes");
        }
        if a.content_type() == Some("api/response")
            && !String::from_utf8_lossy(&a.body)
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit())
            && a.body.len() < 200
        {
            assert_eq!(a, b, "api bytes");
        }
    }
}

#[tokio::test]
async fn conn06_controller_abandons_mid_playback() {
    if !have_traces() {
        return;
    }
    let t = load(6);
    let script = loopback_script(6, &trace_uuid(&t), "1005")
        .file_duration("loops=30", Duration::from_secs(30));
    let (frames, tr) = replay(script, &t, true).await;
    compare(6, &t, &frames, true);
    assert!(tr.controller_left_mid_call);
    assert!(!tr.handed_back_to_dialplan(), "no resume was sent");
    assert_eq!(tr.hangup, None);
}

#[tokio::test]
async fn conn07_dtmf_then_uuid_break() {
    if !have_traces() {
        return;
    }
    let t = load(7);
    let script = loopback_script(7, &trace_uuid(&t), "1006")
        .file_duration("loops=20", Duration::from_secs(20))
        .dtmf_after_app('1', "playback", 1, Duration::from_millis(500));
    let (frames, _tr) = replay(script, &t, false).await;
    compare(7, &t, &frames, true);
}

#[tokio::test]
async fn conn08_sip_call_same_script_as_conn01() {
    if !have_traces() {
        return;
    }
    let t = load(8);
    let script = CallScript::new("1000")
        .uuid(&trace_uuid(&t))
        .media_time(Duration::from_millis(600));
    let (frames, _tr) = replay(script, &t, false).await;
    compare(8, &t, &frames, true);
}

#[tokio::test]
async fn conn09_sip_caller_bye_mid_playback() {
    if !have_traces() {
        return;
    }
    let t = load(9);
    let script = CallScript::new("1002")
        .uuid(&trace_uuid(&t))
        .file_duration("loops=30", Duration::from_secs(30))
        .hangup_after(Duration::from_millis(1500));
    let (frames, tr) = replay(script, &t, false).await;
    compare(9, &t, &frames, true);
    let complete = frames
        .iter()
        .find(|f| f.event_header("Application-Response").as_deref() == Some("PLAYBACK ERROR"))
        .expect("playback completion");
    assert_eq!(
        complete
            .event_header("variable_sip_hangup_disposition")
            .as_deref(),
        Some("recv_bye")
    );
    assert!(matches!(
        tr.hangup.as_ref().map(|h| &h.by),
        Some(callflowd::fakeswitch::HangupBy::Caller)
    ));
}

/// The connect reply: same header names in the same order as the capture, and the same bytes
/// for every header whose value is the same.
#[tokio::test]
async fn connect_reply_matches_the_captures() {
    if !have_traces() {
        return;
    }
    for (n, profile) in [
        (1, ChannelProfile::loopback("1000")),
        (8, ChannelProfile::sip("1000")),
    ] {
        let t = load(n);
        let mut ch = callflowd::fakeswitch::Channel::new(&ChannelProfile {
            uuid: trace_uuid(&t),
            ..profile
        });
        let mut out = Vec::new();
        ch.render_connect_reply(&mut out);
        let (frames, rest) = split_frames(&out);
        assert_eq!(rest, 0);
        assert_eq!(frames.len(), 1, "one header block, no Content-Length");
        let fake = &frames[0];
        let real = &t.frames[0];
        assert!(fake.body.is_empty() && fake.header("Content-Length").is_none());
        let names = |f: &Frame| f.headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(fake), names(real), "conn{n:02}: header order");
        let mut same_values = 0;
        for ((k, a), (_, b)) in real.headers.iter().zip(&fake.headers) {
            if wire::decode(a) == wire::decode(b) {
                assert_eq!(a, b, "conn{n:02}: encoding of {k}");
                same_values += 1;
            }
        }
        assert!(
            same_values > 60,
            "conn{n:02}: only {same_values} equal values"
        );
        let size = out.len() as f64
            / (real
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 3)
                .sum::<usize>()
                + 1) as f64;
        assert!((0.9..1.1).contains(&size), "conn{n:02}: size ratio {size}");
        assert_eq!(fake.header("Reply-Text"), Some("%2BOK%0A"));
        assert_eq!(
            fake.headers.last().map(|(k, v)| (k.as_str(), v.as_str())),
            Some(("Control", "full"))
        );
    }
}

/// The encoder reproduces every header value of every capture from its decoded form.
#[test]
fn encoder_reproduces_every_captured_value() {
    if !have_traces() {
        return;
    }
    let mut checked = 0;
    for n in 1..=9 {
        let t = load(n);
        for f in &t.frames {
            let headers = if f.content_type() == Some("text/event-plain") {
                f.event_headers()
            } else if f.header("Event-Name").is_some() {
                f.headers.clone()
            } else {
                continue;
            };
            for (k, v) in headers {
                assert_eq!(wire::encode(&wire::decode(&v)), v, "conn{n:02} {k}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "checked {checked} values");
}

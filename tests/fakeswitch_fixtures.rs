//! Parser fixtures: the byte-exact FreeSWITCH side of every capture in
//! /work/shared/spec/traces/raw is served to freeswitch-esl-tokio's outbound client
//! (`EslClient::accept_outbound_stream`), in lockstep with the same commands the capture's
//! controller sent. Every frame must parse: the CHANNEL_DATA connect reply, replies, api
//! responses, plain and JSON events (repeated headers included), disconnect notices.
//!
//! The same harness then serves the fake switch's own bytes, so the fake is held to what the
//! client library accepts from the real switch.

use bytes::BytesMut;
use callflowd::fakeswitch::command::parse_next;
use callflowd::fakeswitch::wire::{Frame, split_frames};
use callflowd::fakeswitch::{CallScript, dial};
use freeswitch_esl_tokio::{EslClient, EslEvent, EventFormat};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RAW: &str = "/work/shared/spec/traces/raw";

fn have_traces() -> bool {
    let ok = Path::new(RAW).join("conn01.fs_to_ctl.raw").exists();
    if !ok {
        eprintln!("traces not found under {RAW}; skipping");
    }
    ok
}

/// Byte ranges of the frames of a capture, with their parsed form.
fn frame_ranges(data: &[u8]) -> Vec<(std::ops::Range<usize>, Frame)> {
    let (frames, rest) = split_frames(data);
    assert_eq!(rest, 0, "trailing bytes");
    let mut out = Vec::new();
    let mut pos = 0;
    for f in frames {
        let head_end = data[pos..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|p| pos + p + 2)
            .unwrap_or(data.len());
        let end = head_end + f.body.len();
        out.push((pos..end, f));
        pos = end;
    }
    out
}

/// FreeSWITCH frames (CHANNEL_PARK excluded) written before each controller command of
/// capture `n`, from the annotated trace.
fn frames_before(n: usize) -> Vec<usize> {
    let text = std::fs::read_to_string(format!("{RAW}/../outbound-1.10.12.txt")).expect("trace");
    let tag = format!("conn#{n} ");
    let mut out = Vec::new();
    let mut count = 0;
    for line in text.lines().filter(|l| l.contains(&tag)) {
        if line.starts_with(">>>>> [") && line.contains("CONTROLLER -> FS") {
            out.push(count);
        } else if line.starts_with("<<<<< [")
            && line.contains("FS -> CONTROLLER")
            && !line.contains("Event-Name=CHANNEL_PARK")
        {
            count += 1;
        }
    }
    out
}

fn is_reply(f: &Frame) -> bool {
    matches!(
        f.content_type(),
        Some("command/reply") | Some("api/response")
    )
}

/// Plays FreeSWITCH: writes the capture's frames, holding each reply until the client's next
/// command has arrived.
async fn serve(addr: std::net::SocketAddr, data: Vec<u8>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let mut inbuf = BytesMut::new();
    for (range, frame) in frame_ranges(&data) {
        if is_reply(&frame) {
            loop {
                match parse_next(&mut inbuf) {
                    Ok(Some(_)) => break,
                    Ok(None) => {}
                    Err(e) => panic!("controller sent garbage: {e}"),
                }
                let mut buf = [0u8; 4096];
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => inbuf.extend_from_slice(&buf[..n]),
                }
            }
        }
        if stream.write_all(&data[range]).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}

/// What the client saw.
struct Seen {
    connect: freeswitch_esl_tokio::EslResponse,
    replies: Vec<String>,
    events: Vec<EslEvent>,
}

/// Drives the client through `commands` (parsed from a capture's controller side) against a
/// FreeSWITCH side serving `fs_bytes`.
async fn run_client(fs_bytes: Vec<u8>, ctl_bytes: &[u8]) -> Seen {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(serve(addr, fs_bytes));
    let (stream, _) = listener.accept().await.expect("accept");
    let (client, mut events) = EslClient::accept_outbound_stream(stream);
    client.set_command_timeout(Duration::from_secs(10));
    let collector = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_secs(30), events.recv()).await
        {
            match item {
                Ok(ev) => seen.push(ev),
                Err(e) => panic!("event failed to parse: {e}"),
            }
        }
        seen
    });
    let mut buf = BytesMut::from(ctl_bytes);
    let mut connect = None;
    let mut replies = Vec::new();
    while let Ok(Some(cmd)) = parse_next(&mut buf) {
        let line = cmd.line.clone();
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or_default().to_string();
        let rest = line[verb.len()..].trim().to_string();
        let reply = match verb.as_str() {
            "connect" => {
                let r = client
                    .connect_session()
                    .await
                    .expect("connect reply parses");
                connect = Some(r);
                "connect".to_string()
            }
            "myevents" => {
                let fmt = if rest == "json" {
                    EventFormat::Json
                } else {
                    EventFormat::Plain
                };
                client.myevents(fmt).await.expect("myevents");
                "myevents".into()
            }
            "linger" => {
                let t = rest.parse::<u64>().ok().map(Duration::from_secs);
                client.linger(t).await.expect("linger");
                "linger".into()
            }
            "getvar" => format!("{:?}", client.getvar(&rest).await.ok()),
            "api" => client
                .api(&rest)
                .await
                .expect("api")
                .body()
                .unwrap_or_default()
                .to_string(),
            "event" => {
                client
                    .subscribe_events_raw(EventFormat::Json, "BACKGROUND_JOB")
                    .await
                    .expect("event");
                "event".into()
            }
            "bgapi" => client
                .bgapi(&rest)
                .await
                .expect("bgapi")
                .job_uuid()
                .unwrap_or_default()
                .to_string(),
            "sendmsg" => {
                let mut ev = EslEvent::new();
                for (k, v) in &cmd.headers {
                    ev.set_header(k.clone(), v.clone());
                }
                client
                    .sendmsg(None, ev)
                    .await
                    .expect("sendmsg")
                    .reply_text()
                    .unwrap_or_default()
                    .to_string()
            }
            "exit" => {
                let _ = client.exit().await;
                "exit".into()
            }
            other => panic!("unexpected command {other}"),
        };
        replies.push(reply);
    }
    // The switch side closes when its frames are done; the client's stream then ends.
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server done")
        .expect("server join");
    let _ = client.disconnect().await;
    let events = tokio::time::timeout(Duration::from_secs(30), collector)
        .await
        .expect("events drained")
        .expect("collector");
    Seen {
        connect: connect.expect("a connect command"),
        replies,
        events,
    }
}

fn check_capture(n: usize, fs: Vec<u8>, ctl: &[u8], seen: &Seen) {
    let frames: Vec<Frame> = frame_ranges(&fs).into_iter().map(|(_, f)| f).collect();
    let uuid = frames[0]
        .header("Unique-ID")
        .expect("Unique-ID")
        .to_string();
    // The connect reply: Event-Name first, Content-Type near the end; values decoded.
    let c = &seen.connect;
    assert_eq!(c.header("Event-Name"), Some("CHANNEL_DATA"), "conn{n:02}");
    assert_eq!(c.header("Unique-ID"), Some(uuid.as_str()));
    assert_eq!(c.header("Socket-Mode"), Some("async"));
    assert_eq!(c.header("Control"), Some("full"));
    assert!(c.reply_text().unwrap_or_default().starts_with("+OK"));
    assert_eq!(
        c.header("variable_current_application_data"),
        Some("127.0.0.1:8084 async full")
    );
    assert!(c.header("variable_account_id").is_some());
    assert!(
        c.headers().len() > 100,
        "conn{n:02}: {} headers",
        c.headers().len()
    );
    // Every event frame arrived, parsed, in order.
    let want: Vec<(String, Option<String>)> = frames
        .iter()
        .filter(|f| {
            f.content_type()
                .is_some_and(|ct| ct.starts_with("text/event-"))
        })
        .map(|f| {
            (
                f.event_name().unwrap_or_default(),
                f.event_header("Hangup-Cause"),
            )
        })
        .collect();
    let got: Vec<(String, Option<String>)> = seen
        .events
        .iter()
        .map(|e| {
            (
                e.header_str("Event-Name").unwrap_or_default().to_string(),
                e.header_str("Hangup-Cause").map(str::to_string),
            )
        })
        .collect();
    assert_eq!(got, want, "conn{n:02}: events");
    for e in &seen.events {
        let name = e.header_str("Event-Name").unwrap_or_default();
        if name.starts_with("CHANNEL_") || name == "DTMF" {
            assert_eq!(
                e.header_str("Unique-ID"),
                Some(uuid.as_str()),
                "conn{n:02} {name}"
            );
            assert!(e.event_type().is_some(), "conn{n:02}: typed {name}");
        }
        if name == "CHANNEL_EXECUTE_COMPLETE" {
            let resp = e.header_str("Application-Response").unwrap_or_default();
            assert!(
                ["_none_", "FILE PLAYED", "PLAYBACK ERROR"].contains(&resp),
                "conn{n:02}: decoded response {resp:?}"
            );
        }
    }
    let commands = {
        let mut b = BytesMut::from(ctl);
        let mut v = 0;
        while let Ok(Some(_)) = parse_next(&mut b) {
            v += 1;
        }
        v
    };
    assert_eq!(
        seen.replies.len(),
        commands,
        "conn{n:02}: every command answered"
    );
}

#[tokio::test]
async fn every_captured_frame_parses_with_the_esl_client() {
    if !have_traces() {
        return;
    }
    for n in 1..=9 {
        let fs = std::fs::read(format!("{RAW}/conn{n:02}.fs_to_ctl.raw")).expect("fs");
        let ctl = std::fs::read(format!("{RAW}/conn{n:02}.ctl_to_fs.raw")).expect("ctl");
        let seen = run_client(fs.clone(), &ctl).await;
        check_capture(n, fs, &ctl, &seen);
        if n == 5 {
            // JSON events, the BACKGROUND_JOB body, the repeated Hangup-Cause.
            let bg = seen
                .events
                .iter()
                .find(|e| e.header_str("Event-Name") == Some("BACKGROUND_JOB"))
                .expect("BACKGROUND_JOB");
            assert!(bg.body().unwrap_or_default().contains("is ready"));
            assert!(seen.replies.contains(&"Some(\"bar\")".to_string()));
            // freeswitch-esl-tokio hands back FreeSWITCH's `-ERR command not found` for a
            // missing variable as if it were the value.
            assert!(
                seen.replies
                    .contains(&"Some(\"-ERR command not found\")".to_string()),
                "missing var: {:?}",
                seen.replies
            );
            assert!(
                seen.replies
                    .contains(&"-ERR this_api_does_not_exist Command not found!\n".to_string())
            );
        }
        if n == 8 {
            let sdp = seen
                .connect
                .header("variable_switch_r_sdp")
                .unwrap_or_default();
            assert!(sdp.contains("\r\n"), "percent-decoded CRLF");
        }
    }
}

/// The fake's own bytes for the conn01, conn05 and conn09 scenarios go through the same
/// client: whatever the library accepts from the real switch, it accepts from the fake.
#[tokio::test]
async fn the_fakes_bytes_parse_like_the_captures() {
    if !have_traces() {
        return;
    }
    for (n, script) in [
        (1, CallScript::new("1000").loopback()),
        (5, CallScript::new("1004").loopback()),
        (
            9,
            CallScript::new("1002")
                .file_duration("loops=30", Duration::from_secs(30))
                .dtmf_after_app('1', "playback", 1, Duration::from_millis(200))
                .hangup_after(Duration::from_millis(1500)),
        ),
    ] {
        let ctl = std::fs::read(format!("{RAW}/conn{n:02}.ctl_to_fs.raw")).expect("ctl");
        // Play the capture's controller against the fake with a raw socket, keep the bytes.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fake = tokio::spawn(dial(addr, script));
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = BytesMut::from(&ctl[..]);
        let mut cmds = Vec::new();
        let mut pos = 0;
        while let Ok(Some(_)) = parse_next(&mut buf) {
            let end = ctl.len() - buf.len();
            cmds.push(ctl[pos..end].to_vec());
            pos = end;
        }
        let pacing = frames_before(n);
        let mut received = Vec::new();
        for (k, cmd) in cmds.iter().enumerate() {
            // Send each command once the fake has written as many frames as FreeSWITCH had.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while split_frames(&received)
                .0
                .iter()
                .filter(|f| f.event_name().as_deref() != Some("CHANNEL_PARK"))
                .count()
                < pacing[k]
            {
                let mut chunk = [0u8; 65536];
                match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(m)) => received.extend_from_slice(&chunk[..m]),
                    Err(_) => panic!("conn{n:02}: the fake stalled before command {k}"),
                }
            }
            if let Err(e) = stream.write_all(cmd).await {
                panic!("conn{n:02}: write {:?}: {e}", String::from_utf8_lossy(cmd));
            }
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
        drop(stream);
        let _ = tokio::time::timeout(Duration::from_secs(10), fake).await;
        let (frames, rest) = split_frames(&received);
        assert_eq!(rest, 0, "conn{n:02}: the fake wrote a partial frame");
        assert!(
            frames.len() > 10,
            "conn{n:02}: only {} frames",
            frames.len()
        );
        // Now serve those bytes to the client, exactly as the capture was served.
        let seen = run_client(received.clone(), &ctl).await;
        check_capture(n, received, &ctl, &seen);
    }
}

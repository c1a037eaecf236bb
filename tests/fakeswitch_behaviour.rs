//! Behaviour of the fake FreeSWITCH, driven by a tiny controller built on freeswitch-esl-tokio's
//! outbound client (the library the engine uses). Timing assertions are one-sided or generous:
//! the machine is shared and slow.

use callflowd::fakeswitch::{
    BridgeOutcome, CallEnd, CallScript, ChannelProfile, DtmfAt, Fault, HangupBy, ManualSwitch,
    SentFrame, Transcript, dial, wire,
};
use freeswitch_esl_tokio::{EslClient, EslEvent, EslEventStream, EventFormat};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(15);

struct Ctl {
    client: EslClient,
    events: EslEventStream,
    seen: Vec<EslEvent>,
    fake: JoinHandle<std::io::Result<Transcript>>,
    t0: Instant,
    n: u32,
}

async fn start(script: CallScript) -> Ctl {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let t0 = Instant::now();
    let fake = tokio::spawn(dial(addr, script));
    let (stream, _) = listener.accept().await.expect("accept");
    let (client, events) = EslClient::accept_outbound_stream(stream);
    client.set_command_timeout(Duration::from_secs(10));
    Ctl {
        client,
        events,
        seen: Vec::new(),
        fake,
        t0,
        n: 0,
    }
}

fn name(e: &EslEvent) -> &str {
    e.header_str("Event-Name").unwrap_or_default()
}

impl Ctl {
    /// connect, myevents plain, linger, resume (what the engine's session does); returns the
    /// channel uuid from the connect reply.
    async fn setup(&mut self, linger: Option<Duration>) -> String {
        let c = self.client.connect_session().await.expect("connect");
        let uuid = c.header("Unique-ID").unwrap_or_default().to_string();
        self.client
            .myevents(EventFormat::Plain)
            .await
            .expect("myevents");
        if let Some(l) = linger {
            self.client.linger(Some(l)).await.expect("linger");
        }
        self.client.resume().await.expect("resume");
        uuid
    }

    /// sendmsg execute with a fresh event-uuid; returns the uuid.
    async fn send(&mut self, app: &str, arg: &str, lock: bool) -> String {
        self.n += 1;
        let uuid = format!("ev-{}-{app}", self.n);
        let mut ev = EslEvent::new();
        ev.set_header("call-command", "execute");
        ev.set_header("execute-app-name", app);
        if !arg.is_empty() {
            ev.set_header("execute-app-arg", arg);
        }
        ev.set_header("event-uuid", uuid.as_str());
        if lock {
            ev.set_header("event-lock", "true");
        }
        let reply = self.client.sendmsg(None, ev).await.expect("sendmsg reply");
        assert_eq!(reply.reply_text(), Some("+OK"));
        uuid
    }

    async fn wait(&mut self, what: &str, pred: impl Fn(&EslEvent) -> bool) -> EslEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(e))) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(Some(Err(e))) => panic!("event error while waiting for {what}: {e}"),
                Ok(None) => panic!("stream ended while waiting for {what}: {:?}", self.names()),
                Err(_) => panic!("timed out waiting for {what}: {:?}", self.names()),
            }
        }
    }

    async fn complete(&mut self, uuid: &str) -> EslEvent {
        let u = uuid.to_string();
        self.wait(&format!("completion of {uuid}"), move |e| {
            name(e) == "CHANNEL_EXECUTE_COMPLETE" && e.header_str("Application-UUID") == Some(&u)
        })
        .await
    }

    async fn run(&mut self, app: &str, arg: &str) -> EslEvent {
        let u = self.send(app, arg, true).await;
        self.complete(&u).await
    }

    async fn hangup_complete(&mut self) -> EslEvent {
        self.wait("CHANNEL_HANGUP_COMPLETE", |e| {
            name(e) == "CHANNEL_HANGUP_COMPLETE"
        })
        .await
    }

    fn names(&self) -> Vec<String> {
        self.seen.iter().map(|e| name(e).to_string()).collect()
    }

    async fn finish(self) -> Transcript {
        let _ = self.client.disconnect().await;
        tokio::time::timeout(WAIT, self.fake)
            .await
            .expect("the fake ends")
            .expect("join")
            .expect("dial")
    }
}

fn frame_index(tr: &Transcript, pred: impl Fn(&SentFrame) -> bool) -> usize {
    tr.frames
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("frame not found in {:#?}", summary(tr)))
}

fn summary(tr: &Transcript) -> Vec<String> {
    tr.frames
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}",
                f.content_type,
                f.event.clone().unwrap_or_default(),
                f.application.clone().unwrap_or_default(),
                f.text.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn plus_ok_precedes_execute_and_locked_apps_run_one_at_a_time() {
    for script in [CallScript::new("1000"), CallScript::new("1000").realistic()] {
        let mut c = start(script.media_time(Duration::from_millis(200))).await;
        c.setup(Some(Duration::from_secs(5))).await;
        // Pipelined: three executes sent without waiting for completions.
        let a = c.send("answer", "", true).await;
        let p = c.send("playback", "ivr/welcome.wav", true).await;
        let s = c.send("set", "foo=bar", true).await;
        let done = c.complete(&s).await;
        assert_eq!(done.variable_str("foo"), Some("bar"));
        let tr = c.finish().await;
        for u in [&a, &p, &s] {
            let cmd = tr
                .commands
                .iter()
                .position(|r| r.header("event-uuid") == Some(u.as_str()))
                .expect("command");
            let reply = tr
                .frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f.content_type == "command/reply")
                .nth(cmd)
                .map(|(i, _)| i)
                .expect("reply");
            let exec = frame_index(&tr, |f| {
                f.event.as_deref() == Some("CHANNEL_EXECUTE") && f.app_uuid.as_deref() == Some(u)
            });
            assert!(reply < exec, "+OK before CHANNEL_EXECUTE for {u}");
        }
        // Event-lock: each app starts after the previous one completed.
        let order: Vec<String> = tr
            .frames
            .iter()
            .filter(|f| {
                f.event
                    .as_deref()
                    .is_some_and(|e| e.starts_with("CHANNEL_EXECUTE"))
            })
            .map(|f| {
                format!(
                    "{}:{}",
                    f.event.as_deref().unwrap_or_default(),
                    f.application.as_deref().unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                "CHANNEL_EXECUTE:answer",
                "CHANNEL_EXECUTE_COMPLETE:answer",
                "CHANNEL_EXECUTE:playback",
                "CHANNEL_EXECUTE_COMPLETE:playback",
                "CHANNEL_EXECUTE:set",
                "CHANNEL_EXECUTE_COMPLETE:set",
            ]
        );
        assert_eq!(
            tr.app_responses()[1],
            ("playback".to_string(), "FILE PLAYED".to_string())
        );
    }
}

#[tokio::test]
async fn without_event_lock_a_queued_app_runs_nested() {
    let mut c = start(CallScript::new("1000").media_time(Duration::from_millis(600))).await;
    c.setup(None).await;
    c.run("answer", "").await;
    let started = Instant::now();
    let p = c.send("playback", "ivr/long.wav", false).await;
    let s = c.send("set", "x=1", true).await;
    c.complete(&s).await;
    let pb = c.complete(&p).await;
    assert!(started.elapsed() >= Duration::from_millis(550));
    assert_eq!(pb.header_str("Application-Response"), Some("FILE PLAYED"));
    let names: Vec<String> = c
        .seen
        .iter()
        .filter(|e| name(e).starts_with("CHANNEL_EXECUTE"))
        .map(|e| {
            format!(
                "{}:{}",
                name(e),
                e.header_str("Application").unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        names[2..],
        [
            "CHANNEL_EXECUTE:playback",
            "CHANNEL_EXECUTE:set",
            "CHANNEL_EXECUTE_COMPLETE:set",
            "CHANNEL_EXECUTE_COMPLETE:playback"
        ]
    );
    c.finish().await;
}

#[tokio::test]
async fn unknown_app_hangs_up_destination_out_of_order() {
    let mut c = start(CallScript::new("1000")).await;
    c.setup(Some(Duration::from_secs(5))).await;
    let u = c.send("this_app_does_not_exist", "foo bar", true).await;
    let h = c
        .wait("CHANNEL_HANGUP", |e| name(e) == "CHANNEL_HANGUP")
        .await;
    assert_eq!(
        h.header_str("Hangup-Cause"),
        Some("DESTINATION_OUT_OF_ORDER")
    );
    assert_eq!(h.variable_str("app_uuid"), Some(u.as_str()));
    let hc = c.hangup_complete().await;
    assert_eq!(
        hc.header_str("Hangup-Cause"),
        Some("DESTINATION_OUT_OF_ORDER")
    );
    assert!(
        !c.seen
            .iter()
            .any(|e| e.header_str("Application-UUID") == Some(u.as_str())),
        "the event-uuid never comes back"
    );
    let tr = c.finish().await;
    assert!(tr.apps.is_empty());
    assert!(matches!(tr.hangup.map(|h| h.by), Some(HangupBy::Switch(_))));
}

#[tokio::test]
async fn scripted_dtmf_arrives_at_roughly_the_right_time() {
    let script = CallScript::new("1000")
        .dtmf("1@400ms,2@900ms")
        .expect("digits");
    let mut c = start(script).await;
    c.setup(None).await;
    let connected = c.t0;
    c.run("answer", "").await;
    let d1 = c.wait("DTMF 1", |e| name(e) == "DTMF").await;
    let t1 = connected.elapsed();
    let d2 = c.wait("DTMF 2", |e| name(e) == "DTMF").await;
    let t2 = connected.elapsed();
    assert_eq!(d1.header_str("DTMF-Digit"), Some("1"));
    assert_eq!(d2.header_str("DTMF-Digit"), Some("2"));
    assert!(t1 >= Duration::from_millis(380), "first digit at {t1:?}");
    assert!(t2 >= Duration::from_millis(880), "second digit at {t2:?}");
    assert!(t2 < Duration::from_secs(10));
    assert_eq!(d1.header_str("DTMF-Duration"), Some("2000"));
    assert_eq!(d1.header_str("DTMF-Source"), Some("RTP"));
    assert!(
        !d1.headers().keys().any(|k| k.starts_with("variable_")),
        "DTMF carries basic channel data only"
    );
    let tr = c.finish().await;
    assert_eq!(tr.dtmf.iter().map(|(_, d)| *d).collect::<String>(), "12");
}

#[tokio::test]
async fn caller_hangup_mid_playback_then_closing_sequence_and_silent_skips() {
    let script = CallScript::new("1002")
        .file_duration("long", Duration::from_secs(30))
        .dtmf_after_app('5', "playback", 1, Duration::from_millis(100))
        .hangup_after(Duration::from_millis(700));
    let mut c = start(script).await;
    c.setup(None).await;
    c.client.linger(None).await.expect("linger forever");
    c.run("answer", "").await;
    let p = c.send("playback", "ivr/long.wav", true).await;
    let done = c.complete(&p).await;
    assert_eq!(
        done.header_str("Application-Response"),
        Some("PLAYBACK ERROR")
    );
    assert_eq!(
        done.variable_str("sip_hangup_disposition"),
        Some("recv_bye")
    );
    c.hangup_complete().await;
    let tail: Vec<String> = c
        .seen
        .iter()
        .skip_while(|e| name(e) != "CHANNEL_HANGUP")
        .map(|e| {
            format!(
                "{} {}",
                name(e),
                e.header_str("Application")
                    .or(e.header_str("Channel-State"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            "CHANNEL_HANGUP CS_EXECUTE",
            "CHANNEL_EXECUTE_COMPLETE playback",
            "CHANNEL_UNPARK CS_EXECUTE",
            "CHANNEL_EXECUTE_COMPLETE socket",
            "CHANNEL_STATE CS_HANGUP",
            "CHANNEL_STATE CS_REPORTING",
            "CHANNEL_HANGUP_COMPLETE CS_REPORTING",
        ]
    );
    // Later commands: +OK and nothing runs; api still answers.
    c.send("playback", "ivr/other.wav", true).await;
    let up = c.client.api("uptime").await.expect("api");
    assert!(up.body().unwrap_or_default().ends_with('\n'));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tr = c.finish().await;
    assert_eq!(tr.skipped.len(), 1);
    assert_eq!(tr.apps.len(), 2);
    assert!(tr.controller_closed_after_hangup_complete);
    assert_eq!(tr.end, Some(CallEnd::ControllerClosed));
    let linger = tr
        .frames
        .iter()
        .find(|f| f.text.as_deref() == Some("linger"))
        .expect("linger notice");
    let text = String::from_utf8_lossy(&linger.bytes);
    assert!(text.contains("Content-Disposition: linger\n") && text.contains("Linger-Time: -1\n"));
    assert_eq!(tr.hangup.map(|h| h.by), Some(HangupBy::Caller));
}

#[tokio::test]
async fn linger_n_closes_after_n_seconds_and_exit_says_bye() {
    let mut c = start(CallScript::new("1000")).await;
    c.setup(Some(Duration::from_secs(1))).await;
    c.run("answer", "").await;
    let h = c.send("hangup", "USER_BUSY", true).await;
    c.complete(&h).await;
    c.hangup_complete().await;
    let notice_at = Instant::now();
    // The switch closes by itself ~1.5 s later: the stream ends.
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, c.events.recv()).await {}
    assert!(notice_at.elapsed() >= Duration::from_millis(900));
    let tr = c.finish().await;
    assert_eq!(tr.end, Some(CallEnd::SwitchClosed));
    assert_eq!(tr.hangup_cause(), Some("USER_BUSY"));
    let last = tr.frames.last().expect("frames");
    assert_eq!(last.bytes, {
        let mut v = Vec::new();
        wire::disconnect_notice(&mut v, &tr.uuid);
        v
    });

    // exit: +OK bye, the disconnect notice, close.
    let mut c = start(CallScript::new("1000")).await;
    c.setup(None).await;
    let bye = c.client.exit().await.expect("exit");
    assert_eq!(bye.reply_text(), Some("+OK bye"));
    let tr = c.finish().await;
    assert_eq!(tr.end, Some(CallEnd::SwitchClosed));
    assert!(tr.controller_left_mid_call && tr.handed_back_to_dialplan());
}

#[tokio::test]
async fn call_command_hangup_has_no_execute_events() {
    let mut c = start(CallScript::new("1000")).await;
    c.setup(Some(Duration::from_secs(5))).await;
    let mut ev = EslEvent::new();
    ev.set_header("call-command", "hangup");
    ev.set_header("hangup-cause", "USER_BUSY");
    let reply = c.client.sendmsg(None, ev).await.expect("reply");
    assert_eq!(reply.reply_text(), Some("+OK"));
    let h = c.hangup_complete().await;
    assert_eq!(h.header_str("Hangup-Cause"), Some("USER_BUSY"));
    assert_eq!(h.variable_str("hangup_cause_q850"), Some("17"));
    assert!(!c.names().iter().any(|n| n == "CHANNEL_EXECUTE"));
    c.finish().await;
}

#[tokio::test]
async fn bridge_failure_causes_and_the_continue_on_fail_rule() {
    let script = || {
        CallScript::new("1000")
            .bridge("busy", BridgeOutcome::failed("USER_BUSY"))
            .bridge(
                "noanswer",
                BridgeOutcome::failed("NO_ANSWER").after(Duration::from_millis(100)),
            )
            .bridge(
                "talk",
                BridgeOutcome::answered(Duration::from_millis(200))
                    .after(Duration::from_millis(50)),
            )
    };
    // USER_BUSY with no continue_on_fail: the A-leg is hung up with the cause.
    let mut c = start(script()).await;
    c.setup(Some(Duration::from_secs(5))).await;
    c.run("answer", "").await;
    let b = c.send("bridge", "user/busy@example.com", true).await;
    let done = c.complete(&b).await;
    assert_eq!(done.header_str("Application-Response"), Some("_none_"));
    assert_eq!(done.header_str("Hangup-Cause"), Some("USER_BUSY"));
    assert_eq!(done.variable_str("DIALSTATUS"), Some("BUSY"));
    assert_eq!(
        done.variable_str("originate_disposition"),
        Some("USER_BUSY")
    );
    assert_eq!(
        done.variable_str("originate_failed_cause"),
        Some("USER_BUSY")
    );
    c.hangup_complete().await;
    let names = c.names();
    let hangup = names
        .iter()
        .position(|n| n == "CHANNEL_HANGUP")
        .expect("hangup");
    let complete = names
        .iter()
        .rposition(|n| n == "CHANNEL_EXECUTE_COMPLETE")
        .expect("c");
    assert!(hangup < complete);
    c.finish().await;

    // continue_on_fail=true: the bridge completes and the call goes on.
    let mut c = start(script()).await;
    c.setup(None).await;
    c.run("answer", "").await;
    c.run("set", "continue_on_fail=true").await;
    let done = c.run("bridge", "user/busy").await;
    assert_eq!(done.header_str("Answer-State"), Some("answered"));
    assert_eq!(done.variable_str("DIALSTATUS"), Some("BUSY"));
    let pb = c.run("playback", "ivr/sorry.wav").await;
    assert_eq!(pb.header_str("Application-Response"), Some("FILE PLAYED"));
    c.finish().await;

    // NO_ANSWER continues when no variable is set...
    let mut c = start(script()).await;
    c.setup(None).await;
    c.run("answer", "").await;
    let done = c.run("bridge", "user/noanswer").await;
    assert_eq!(done.header_str("Answer-State"), Some("answered"));
    assert_eq!(done.variable_str("DIALSTATUS"), Some("NOANSWER"));
    // ...but not once continue_on_fail lists other causes only.
    c.run("set", "continue_on_fail=USER_BUSY,17").await;
    let done = c.run("bridge", "user/noanswer").await;
    assert_eq!(done.header_str("Hangup-Cause"), Some("NO_ANSWER"));
    c.finish().await;

    // An answered bridge: BRIDGE, UNBRIDGE, the callee's cause in bridge_hangup_cause.
    let mut c = start(script()).await;
    c.setup(None).await;
    let done = c.run("bridge", "user/talk").await;
    assert_eq!(
        done.variable_str("bridge_hangup_cause"),
        Some("NORMAL_CLEARING")
    );
    assert_eq!(done.header_str("Answer-State"), Some("answered"));
    let names = c.names();
    for n in ["CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    c.finish().await;
}

#[tokio::test]
async fn read_and_play_and_get_digits_collect_scripted_digits() {
    // Anchors count app starts, not play_and_get_digits' own retries: the second try's digits
    // come 1 s after the app started (first prompt 300 ms, "12#", invalid prompt 100 ms, then
    // the re-prompt and its first-digit wait).
    let script = CallScript::new("1000")
        .media_time(Duration::from_millis(300))
        .file_duration("invalid", Duration::from_millis(100))
        .dtmf("12#@read+100ms")
        .expect("digits")
        .dtmf("12#@play_and_get_digits+50ms")
        .expect("digits")
        .dtmf("1234@play_and_get_digits+1000ms")
        .expect("digits");
    let mut c = start(script).await;
    c.setup(None).await;
    c.run("answer", "").await;
    let r = c.run("read", "1 4 ivr/enter.wav digits 3000 # 2000").await;
    assert_eq!(r.variable_str("digits"), Some("12"));
    assert_eq!(r.variable_str("read_result"), Some("success"));
    assert_eq!(r.variable_str("read_terminator_used"), Some("#"));
    // First try "12" is too short for min 4: invalid, re-prompt; second try "1234" passes.
    let p = c
        .run(
            "play_and_get_digits",
            "4 4 3 3000 # ivr/pin.wav ivr/invalid.wav pin ^\\d{4}$ 2000",
        )
        .await;
    assert_eq!(p.variable_str("pin"), Some("1234"));
    assert_eq!(p.variable_str("pin_invalid"), Some("12"));
    assert_eq!(p.variable_str("read_result"), Some("success"));
    // No digits at all: a timeout.
    let t = c.run("read", "1 1 ivr/enter.wav other 300 #").await;
    assert_eq!(t.variable_str("read_result"), Some("timeout"));
    assert_eq!(t.variable_str("other"), None);
    c.finish().await;
}

#[tokio::test]
async fn playback_terminators_stop_a_playback_and_other_digits_do_not() {
    let script = CallScript::new("1000")
        .file_duration("long", Duration::from_secs(20))
        .dtmf("5@playback+100ms,#@playback+300ms")
        .expect("digits");
    let mut c = start(script).await;
    c.setup(None).await;
    c.run("answer", "").await;
    c.run("set", "playback_terminators=#").await;
    let started = Instant::now();
    let done = c.run("playback", "ivr/long.wav").await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(done.header_str("Application-Response"), Some("FILE PLAYED"));
    assert_eq!(done.variable_str("playback_terminator_used"), Some("#"));
    assert_eq!(c.names().iter().filter(|n| n.as_str() == "DTMF").count(), 2);
    // uuid_break stops a playback too (FILE PLAYED, trace conn07).
    let u = c.send("playback", "ivr/long.wav", true).await;
    c.wait("EXECUTE", |e| name(e) == "CHANNEL_EXECUTE").await;
    let me = c.seen[0]
        .header_str("Unique-ID")
        .unwrap_or_default()
        .to_string();
    let r = c
        .client
        .api(&format!("uuid_break {me} all"))
        .await
        .expect("api");
    assert_eq!(r.body(), Some("+OK\n"));
    let done = c.complete(&u).await;
    assert_eq!(done.header_str("Application-Response"), Some("FILE PLAYED"));
    c.finish().await;
}

#[tokio::test]
async fn missing_files_and_unknown_apis_and_replies() {
    let script = CallScript::new("1000").missing_file("nope.wav");
    let mut c = start(script).await;
    let me = c.setup(None).await;
    c.run("answer", "").await;
    let nf = c.run("playback", "ivr/nope.wav").await;
    assert_eq!(
        nf.header_str("Application-Response"),
        Some("FILE NOT FOUND")
    );
    let again = c.client.myevents(EventFormat::Plain).await;
    assert!(again.is_err(), "second myevents: -ERR aready enabled.");
    let api = c.client.api("no_such_api arg").await.expect("api");
    assert_eq!(api.body(), Some("-ERR no_such_api Command not found!\n"));
    let noop = c.client.noop().await;
    assert!(format!("{noop:?}").contains("command not found"));
    c.run("set", &format!("long={}", "x".repeat(600))).await;
    let long = c.client.getvar("long").await.expect("getvar");
    assert_eq!(long.len(), 511, "the 512-byte reply buffer");
    let v = c
        .client
        .api(&format!("uuid_getvar {me} long"))
        .await
        .expect("api");
    assert_eq!(v.body().map(str::len), Some(600));
    let tr = c.finish().await;
    assert!(tr.command_lines().contains(&"getvar long".to_string()));
}

#[tokio::test]
async fn apis_the_engine_uses() {
    let mut c = start(CallScript::new("1000")).await;
    let me = c.setup(None).await;
    c.run("answer", "").await;
    let body = |r: freeswitch_esl_tokio::EslResponse| r.body().unwrap_or_default().to_string();
    let show = body(c.client.api("show channels").await.expect("api"));
    assert!(show.starts_with("uuid,direction,"), "{show}");
    assert!(
        show.contains(&me) && show.ends_with("\n1 total.\n"),
        "{show}"
    );
    let lots = body(c.client.api("valet_info 7000").await.expect("api"));
    assert!(lots.contains("<lot name=\"7000\">"), "{lots}");
    let hold = body(
        c.client
            .api(&format!("uuid_hold off {me}"))
            .await
            .expect("api"),
    );
    assert_eq!(hold, "+OK Success\n");
    let other = body(
        c.client
            .api("uuid_kill 00000000-0000-0000-0000-000000000000")
            .await
            .expect("api"),
    );
    assert_eq!(other, "-ERR No such channel!\n");
    // uuid_broadcast queues the app on the channel; it runs with a random Application-UUID.
    let sent = body(
        c.client
            .api(&format!("uuid_broadcast {me} ivr/beep.wav aleg"))
            .await
            .expect("api"),
    );
    assert_eq!(sent, "+OK Message sent\n");
    let done = c
        .wait("broadcast playback", |e| {
            name(e) == "CHANNEL_EXECUTE_COMPLETE" && e.header_str("Application") == Some("playback")
        })
        .await;
    assert_eq!(done.header_str("Application-Data"), Some("ivr/beep.wav"));
    c.finish().await;
}

#[tokio::test]
async fn injected_events_stand_in_for_a_far_end_bind_digit_action() {
    // What the far end's `bind_digit_action ...,metaflow,peer,self,peer` reports during a
    // bridge, 300 ms after it started (the fake has no B-leg to run the digit matcher).
    let script = CallScript::new("1000")
        .bridge("*", BridgeOutcome::answered(Duration::from_secs(1)))
        .event_at(
            DtmfAt::AppStart {
                app: "bridge".into(),
                nth: 1,
                offset: Duration::from_millis(300),
            },
            "CHANNEL_DATA",
            &[("metaflow", "peer"), ("digits", "*12")],
        );
    let mut c = start(script).await;
    c.setup(None).await;
    let b = c.send("bridge", "user/1001@example.com", true).await;
    let data = c.wait("CHANNEL_DATA", |e| name(e) == "CHANNEL_DATA").await;
    assert_eq!(data.header_str("metaflow"), Some("peer"));
    assert_eq!(data.header_str("digits"), Some("*12"));
    c.complete(&b).await;
    let names = c.names();
    let bridge = names
        .iter()
        .position(|n| n == "CHANNEL_BRIDGE")
        .expect("bridge");
    let injected = names
        .iter()
        .position(|n| n == "CHANNEL_DATA")
        .expect("data");
    assert!(bridge < injected);
    c.finish().await;
}

#[tokio::test]
async fn controller_closing_mid_call_hands_back_to_the_dialplan() {
    let script = CallScript::new("1000").file_duration("long", Duration::from_secs(30));
    let mut c = start(script).await;
    c.setup(Some(Duration::from_secs(10))).await;
    c.run("answer", "").await;
    c.send("playback", "ivr/long.wav", true).await;
    c.wait("EXECUTE", |e| {
        name(e) == "CHANNEL_EXECUTE" && e.header_str("Application") == Some("playback")
    })
    .await;
    let tr = c.finish().await;
    assert!(tr.controller_left_mid_call);
    assert!(tr.resume_requested);
    assert!(tr.handed_back_to_dialplan());
    assert_eq!(tr.hangup, None);
    assert_eq!(tr.apps[1].completed, None);
}

#[tokio::test]
async fn json_events_and_turnarounds() {
    let mut c = start(CallScript::new("1000")).await;
    let connect = c.client.connect_session().await.expect("connect");
    assert_eq!(connect.header("Control"), Some("full"));
    c.client
        .myevents(EventFormat::Json)
        .await
        .expect("myevents");
    c.run("answer", "").await;
    let done = c.run("playback", "ivr/x.wav").await;
    assert_eq!(done.header_str("Application-Response"), Some("FILE PLAYED"));
    c.run("hangup", "").await;
    let tr = c.finish().await;
    assert!(
        tr.frames
            .iter()
            .any(|f| f.content_type == "text/event-json")
    );
    assert!(tr.turnarounds.len() >= 3, "{:?}", tr.turnarounds);
    assert!(tr.turnaround_quantile(0.5).is_some());
    let timeline = tr.render();
    assert!(
        timeline.contains(">> sendmsg execute playback \"ivr/x.wav\""),
        "{timeline}"
    );
    assert!(timeline.contains("<< CHANNEL_EXECUTE_COMPLETE playback -> FILE PLAYED"));
}

#[tokio::test]
async fn transfer_leaves_the_socket() {
    let mut c = start(CallScript::new("1000")).await;
    c.setup(Some(Duration::from_secs(1))).await;
    c.run("answer", "").await;
    c.run("transfer", "2000 XML default").await;
    c.wait("socket completion", |e| {
        name(e) == "CHANNEL_EXECUTE_COMPLETE" && e.header_str("Application") == Some("socket")
    })
    .await;
    c.send("playback", "ivr/x.wav", true).await;
    c.hangup_complete().await;
    let tr = c.finish().await;
    assert_eq!(tr.transferred_to.as_deref(), Some("2000 XML default"));
    assert_eq!(tr.skipped.len(), 1);
}

#[tokio::test]
async fn faults_are_injected() {
    // Drop the connection when the 4th command (the first sendmsg) arrives.
    let mut c = start(CallScript::new("1000").fault(Fault::DropOnCommand(4))).await;
    c.setup(None).await;
    let mut ev = EslEvent::new();
    ev.set_header("call-command", "execute");
    ev.set_header("execute-app-name", "answer");
    assert!(c.client.sendmsg(None, ev).await.is_err());
    let tr = c.finish().await;
    assert!(matches!(tr.end, Some(CallEnd::Fault(_))));

    // Never reply to the 2nd command.
    let c = start(CallScript::new("1000").fault(Fault::NeverReply(2))).await;
    c.client.set_command_timeout(Duration::from_millis(500));
    let connect = c.client.connect_session().await.expect("connect");
    assert_eq!(connect.header("Control"), Some("full"));
    assert!(c.client.myevents(EventFormat::Plain).await.is_err());
    c.finish().await;

    // Never complete a playback (even at hangup): the controller must time out.
    let script = CallScript::new("1000")
        .fault(Fault::NoExecuteComplete {
            app: "playback".into(),
        })
        .hangup_after(Duration::from_millis(800));
    let mut c = start(script).await;
    c.setup(Some(Duration::from_secs(5))).await;
    let p = c.send("playback", "ivr/x.wav", true).await;
    let h = c.hangup_complete().await;
    assert_eq!(h.header_str("Hangup-Cause"), Some("NORMAL_CLEARING"));
    assert!(
        !c.seen
            .iter()
            .any(|e| e.header_str("Application-UUID") == Some(p.as_str())
                && name(e) == "CHANNEL_EXECUTE_COMPLETE")
    );
    c.finish().await;

    // Garbage, a 1 MiB header line, a flood, chunked slow writes: the fake survives them.
    let script = CallScript::new("1000")
        .fault(Fault::GarbageAfterCommand {
            n: 1,
            bytes: b"\xff\xfe garbage\n\n".to_vec(),
        })
        .fault(Fault::ChunkedWrites {
            chunk: 7,
            delay: Duration::from_micros(10),
        });
    let (tr, _bytes) = raw_session(script, &[b"connect\n\n", b"exit\n\n"]).await;
    assert!(tr.frames.iter().any(|f| f.content_type == "raw"));
    let script = CallScript::new("1000")
        .fault(Fault::HugeHeaderAfterCommand { n: 1, len: 1 << 20 })
        .fault(Fault::FloodEvents {
            after_command: 1,
            count: 2000,
        })
        .lean();
    let (tr, bytes) = raw_session(script, &[b"connect\n\n", b"exit\n\n"]).await;
    assert!(bytes.len() > (1 << 20) + 2000 * 1000);
    assert_eq!(tr.end, Some(CallEnd::SwitchClosed));
}

/// Plays raw bytes as the controller, sending each chunk after the previous reply had time to
/// arrive; returns the transcript and everything the fake wrote.
async fn raw_session(script: CallScript, chunks: &[&[u8]]) -> (Transcript, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(dial(addr, script));
    let (mut stream, _) = listener.accept().await.expect("accept");
    let mut received = Vec::new();
    for chunk in chunks {
        if stream.write_all(chunk).await.is_err() {
            break;
        }
        let mut buf = vec![0u8; 1 << 16];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
    }
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut received)).await;
    drop(stream);
    let tr = tokio::time::timeout(WAIT, fake)
        .await
        .expect("fake ends")
        .expect("join")
        .expect("dial");
    (tr, received)
}

#[tokio::test]
async fn bad_controller_input_is_recorded_never_a_panic() {
    // Non-UTF-8 bytes and a header without a colon: parsed leniently, answered -ERR.
    let (tr, bytes) = raw_session(
        CallScript::new("1000"),
        &[
            b"connect\n\n",
            b"\xff\xfe\xfd\nno colon here\n\n",
            b"exit\n\n",
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&bytes).contains("Reply-Text: -ERR command not found\n"));
    assert_eq!(tr.end, Some(CallEnd::SwitchClosed));
    // An unusable Content-Length: recorded, connection closed.
    let (tr, _) = raw_session(
        CallScript::new("1000"),
        &[b"connect\n\n", b"sendmsg\nContent-Length: lots\n\n"],
    )
    .await;
    assert!(matches!(tr.end, Some(CallEnd::ProtocolError(_))));
    // A sendmsg for another channel, an execute without an app name, bodies as app args.
    let (tr, bytes) = raw_session(
        CallScript::new("1000"),
        &[
            b"connect\n\n",
            b"myevents\n\n",
            b"sendmsg 00000000-0000-0000-0000-000000000000\ncall-command: execute\nexecute-app-name: answer\n\n",
            b"sendmsg\ncall-command: execute\n\n",
            b"sendmsg\ncall-command: execute\nexecute-app-name: log\ncontent-type: text/plain\nContent-Length: 9\n\nINFO a\nb!",
            b"exit\n\n",
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("-ERR invalid session id [00000000-0000-0000-0000-000000000000]"));
    assert!(!tr.errors.is_empty());
    assert_eq!(
        tr.executed(),
        [("log".to_string(), "INFO a\nb!".to_string())]
    );
    // Nothing at all: the first-command deadline.
    let script = CallScript {
        first_command_timeout: Duration::from_millis(300),
        ..CallScript::new("1000")
    };
    let (tr, _) = raw_session(script, &[]).await;
    assert_eq!(tr.end, Some(CallEnd::FirstCommandTimeout));
}

#[tokio::test]
async fn manual_switch_is_parsed_by_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let switch = tokio::spawn(async move {
        let mut fs = ManualSwitch::dial(addr, ChannelProfile::loopback("1000"))
            .await
            .expect("dial");
        fs.expect("connect").await.expect("connect");
        fs.send_connect_reply().await.expect("reply");
        fs.expect("myevents").await.expect("myevents");
        fs.reply("+OK Events Enabled").await.expect("reply");
        let cmd = fs.expect("sendmsg").await.expect("sendmsg");
        fs.reply("+OK").await.expect("reply");
        let u = cmd.header("event-uuid").unwrap_or_default().to_string();
        fs.send_execute("answer", "", &u).await.expect("exec");
        fs.send_answer().await.expect("answer");
        fs.send_execute_complete("answer", "", &u, "_none_")
            .await
            .expect("complete");
        fs.send_dtmf('7').await.expect("dtmf");
        fs.send_hangup("NORMAL_CLEARING").await.expect("hangup");
        fs.send_closing_sequence(None).await.expect("closing");
        fs.close().await;
    });
    let (stream, _) = listener.accept().await.expect("accept");
    let (client, mut events) = EslClient::accept_outbound_stream(stream);
    let connect = client.connect_session().await.expect("connect");
    assert_eq!(connect.header("Caller-Destination-Number"), Some("1000"));
    client.myevents(EventFormat::Plain).await.expect("myevents");
    let mut ev = EslEvent::new();
    ev.set_header("call-command", "execute");
    ev.set_header("execute-app-name", "answer");
    ev.set_header("event-uuid", "manual-1");
    let reply = client.sendmsg(None, ev).await.expect("sendmsg");
    assert_eq!(reply.reply_text(), Some("+OK"));
    let mut names = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(WAIT, events.recv()).await {
        names.push(name(&e).to_string());
    }
    switch.await.expect("switch");
    assert_eq!(
        names,
        [
            "CHANNEL_EXECUTE",
            "CHANNEL_ANSWER",
            "CHANNEL_EXECUTE_COMPLETE",
            "DTMF",
            "CHANNEL_HANGUP",
            "CHANNEL_UNPARK",
            "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_STATE",
            "CHANNEL_STATE",
            "CHANNEL_HANGUP_COMPLETE"
        ]
    );
}

/// Load-generator smoke test: many concurrent fake calls against a minimal pipelining
/// controller. Run with `cargo test --release --test fakeswitch_behaviour throughput --
/// --ignored --nocapture`; prints calls per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let calls: usize = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let controller = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..calls {
            let Ok((mut s, _)) = listener.accept().await else {
                break;
            };
            tasks.spawn(async move {
                let _ = s.set_nodelay(true);
                let cmds = "connect\n\nmyevents\n\nsendmsg\ncall-command: execute\nexecute-app-name: answer\nevent-uuid: a\nevent-lock: true\n\nsendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: silence_stream://0\nevent-uuid: b\nevent-lock: true\n\nsendmsg\ncall-command: execute\nexecute-app-name: hangup\nevent-uuid: c\nevent-lock: true\n\n";
                let _ = s.write_all(cmds.as_bytes()).await;
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
                sink.len()
            });
        }
        let mut bytes = 0;
        while let Some(r) = tasks.join_next().await {
            bytes += r.unwrap_or(0);
        }
        bytes
    });
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut fakes = tokio::task::JoinSet::new();
    let concurrency = 200;
    let mut launched = 0;
    let mut done = 0;
    let mut failures = 0;
    while done < calls {
        while launched < calls && launched - done < concurrency {
            fakes.spawn(dial(addr, CallScript::new("1000").lean()));
            launched += 1;
        }
        match fakes.join_next().await {
            Some(Ok(Ok(tr))) => {
                if tr.hangup_cause() != Some("NORMAL_CLEARING") {
                    failures += 1;
                }
            }
            _ => failures += 1,
        }
        done += 1;
    }
    let elapsed = started.elapsed();
    let bytes = controller.await.expect("controller");
    let cpu = process_cpu().saturating_sub(cpu_before);
    eprintln!(
        "{calls} calls in {elapsed:?}: {:.0} calls/s, {:.1} MB/s of ESL, {failures} failures, \
         {:.3} ms CPU per call (fake + test controller + kernel)",
        calls as f64 / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        cpu.as_secs_f64() * 1000.0 / calls as f64
    );
    assert_eq!(failures, 0);
}

/// User + system CPU time of this process (Linux `/proc/self/stat`; zero elsewhere).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are at offsets 11 and 12 after the command name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

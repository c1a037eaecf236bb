//! ESL fault injection through the fake switch (issue 7): a connection dropped mid-command,
//! garbage bytes, a truncated frame, a 1 MiB header line, a reply that never comes, an
//! EXECUTE_COMPLETE that never comes, a flood of 100k events, a slow network.
//!
//! For each fault: the call ends cleanly (hung up, or handed back to the dialplan by closing
//! the socket after `resume`), a log line says why, nothing panics, no task or call is left
//! behind, and 20 ordinary calls running at the same time all complete normally.

mod common;

use callflowd::engine::{EngineConfig, EngineContext, listener};
use callflowd::fakeswitch::{CallScript, Fault, Transcript, dial};
use callflowd::store::memory::MemStore;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

/// Everything the engine logs during the test.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn take(&self) -> String {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        text
    }
}

fn store() -> Arc<MemStore> {
    common::engine::three_step_store(ACCOUNT, "faults", "silence_stream://2000")
}

/// Commands as the engine sends them: 1 connect, 2 myevents, 3 linger, 4 resume, 5 nixevent,
/// 6 answer, 7 set playback_terminators, 8 playback, 9 hangup.
const PLAYBACK: usize = 8;
const ANSWER: usize = 6;

fn script() -> CallScript {
    CallScript::new("1000")
        .account(Some(ACCOUNT))
        .file_duration("silence_stream://2000", Duration::from_millis(300))
        .max_duration(Duration::from_secs(30))
}

fn normal_call_ok(t: &Transcript) -> bool {
    t.hangup_cause() == Some("NORMAL_CLEARING") && t.controller_closed_after_hangup_complete
}

/// How a faulty call may end: hung up by us, or handed back to the dialplan (socket closed
/// after `resume`), or the switch itself went away.
fn ended_cleanly(t: &Transcript) -> bool {
    t.hangup.is_some() || t.handed_back_to_dialplan() || t.end.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_the_call_cleanly_and_spares_the_others() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,callflowd=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init();
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let config = EngineConfig {
        command_timeout: Duration::from_secs(1),
        call_deadline: Duration::from_secs(6),
        linger: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let ctx = EngineContext::new(config, store());
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = esl.local_addr().unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener::serve(esl, ctx.clone(), stop_rx));
    let metrics = tokio::runtime::Handle::current().metrics();

    // Warm-up so lazy state does not count as a leak.
    assert!(normal_call_ok(&dial(addr, script()).await.unwrap()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks_before = metrics.num_alive_tasks();
    logs.take();

    let cases: Vec<(&str, Fault, &[&str])> = vec![
        (
            "connection dropped mid-command",
            Fault::DropOnCommand(PLAYBACK),
            &["socket lost", "event stream ended", "socket closed"],
        ),
        (
            "garbage bytes",
            Fault::GarbageAfterCommand {
                n: ANSWER,
                bytes: b"\x00\xff\xfeGARBAGE: \x01\x02\n\nContent-Length: zz\n\n\xc3\x28".to_vec(),
            },
            &["event stream", "socket", "parse", "protocol"],
        ),
        (
            "truncated frame",
            Fault::TruncatedFrameOnCommand(PLAYBACK),
            &["socket lost", "event stream", "socket closed"],
        ),
        (
            "1 MiB header line",
            Fault::HugeHeaderAfterCommand {
                n: ANSWER,
                len: 1 << 20,
            },
            &[],
        ),
        (
            "reply that never comes",
            Fault::NeverReply(PLAYBACK),
            &["switch stopped answering", "timed out"],
        ),
        (
            "EXECUTE_COMPLETE that never comes",
            Fault::NoExecuteComplete {
                app: "answer".into(),
            },
            &["switch stopped answering", "timed out"],
        ),
        (
            "EXECUTE_COMPLETE of a long app never comes (watchdog)",
            Fault::NoExecuteComplete {
                app: "playback".into(),
            },
            &["deadline"],
        ),
        (
            "flood of 100k events",
            Fault::FloodEvents {
                after_command: ANSWER,
                count: 100_000,
            },
            &[],
        ),
        (
            "slow network (7-byte chunks)",
            Fault::ChunkedWrites {
                chunk: 7,
                delay: Duration::from_micros(200),
            },
            &[],
        ),
        (
            "slow switch (40 ms per write)",
            Fault::WriteDelay(Duration::from_millis(40)),
            &[],
        ),
    ];

    for (name, fault, log_words) in cases {
        let started = Instant::now();
        let faulty = tokio::spawn(dial(addr, script().fault(fault)));
        let others: Vec<_> = (0..20)
            .map(|_| tokio::spawn(dial(addr, script())))
            .collect();
        for other in others {
            let t = other.await.expect("task").expect("dial");
            assert!(
                normal_call_ok(&t),
                "{name}: an ordinary call was disturbed: {:?} {:?}",
                t.hangup,
                t.end
            );
        }
        let t = faulty.await.expect("task").expect("dial");
        assert!(
            ended_cleanly(&t),
            "{name}: the faulty call did not end: {:?}",
            t.end
        );
        // Nothing stays held: the session task and its reader are gone.
        for _ in 0..200 {
            if ctx.stats.active() == 0 && metrics.num_alive_tasks() <= tasks_before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(ctx.stats.active(), 0, "{name}: a call is still held");
        assert!(
            metrics.num_alive_tasks() <= tasks_before,
            "{name}: tasks left behind ({} > {tasks_before})",
            metrics.num_alive_tasks()
        );
        let text = logs.take();
        if !log_words.is_empty() {
            assert!(
                log_words.iter().any(|w| text.contains(w)),
                "{name}: no log line says why (wanted one of {log_words:?}):\n{text}"
            );
        }
        println!(
            "{name:<55} ok in {:>6.2?}: hangup {:?}, handed back {}, end {:?}",
            started.elapsed(),
            t.hangup.as_ref().map(|h| h.cause.as_str()),
            t.handed_back_to_dialplan(),
            t.end
        );
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a fault caused a panic");
    let _ = stop.send(true);
    let _ = server.await;
}

//! SIGTERM behaviour: new calls are refused at once, calls in flight may finish within the grace
//! period, and calls still up after it are handed back to the FreeSWITCH dialplan (the socket is
//! closed after `resume`, so the dialplan continues after the `socket` app).

mod common;

use callflowd::fakeswitch::{CallScript, dial};
use common::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};

fn long_call() -> serde_json::Value {
    json!({"name": "long", "numbers": ["1000"], "flow": {"module": "answer", "data": {}, "children": {"_":
        {"module": "play", "data": {"id": "silence_stream://60000"}, "children": {}}}}})
}

fn short_call() -> serde_json::Value {
    json!({"name": "short", "numbers": ["2000"], "flow": {"module": "answer", "data": {}, "children": {"_":
        {"module": "play", "data": {"id": "silence_stream://800"}, "children": {"_":
            {"module": "hangup", "data": {}}}}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_short_calls_finish_and_hands_long_ones_back() {
    let server = TestServer::start_with(|c| c.shutdown_grace = Duration::from_millis(1500)).await;
    server.create(long_call()).await;
    server.create(short_call()).await;
    let esl = server.esl_addr();
    let account = server.account_id.clone();
    let script = |number: &str| {
        CallScript::new(number)
            .account(Some(&account))
            .file_duration("silence_stream://60000", Duration::from_secs(60))
            .file_duration("silence_stream://800", Duration::from_millis(800))
    };
    let long = tokio::spawn(dial(esl, script("1000")));
    let short = tokio::spawn(dial(esl, script("2000")));
    // Both calls are in their playback.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let engine = server.service.engine.clone();
    assert_eq!(engine.stats.active(), 2);

    let started = Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new call is taken once shutdown started.
    let refused = dial(esl, script("2000")).await;
    assert!(refused.is_err() || refused.is_ok_and(|t| t.connected_at.is_none()));

    let short = short.await.expect("task").expect("dial");
    assert_eq!(
        short.hangup_cause(),
        Some("NORMAL_CLEARING"),
        "the short call finished normally"
    );
    assert!(short.controller_closed_after_hangup_complete);

    let long = long.await.expect("task").expect("dial");
    assert!(
        long.hangup.is_none(),
        "callflowd must not hang the long call up"
    );
    assert!(
        long.controller_left_mid_call,
        "the socket was closed mid-call"
    );
    assert!(
        long.handed_back_to_dialplan(),
        "resume was sent, so FreeSWITCH continues the dialplan"
    );
    stopping.await.expect("shutdown task");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "the grace period was honoured ({took:?})"
    );
    assert!(
        took < Duration::from_secs(14),
        "shutdown did not hang ({took:?})"
    );
    assert_eq!(engine.stats.active(), 0);
}

//! End-to-end metaflow scenarios: the real engine (session, executor, detector, runner) against
//! the fake switch. The tests of each metaflow module's commands live in its own file
//! (`src/modules/metaflow/*.rs`); these cover detection, digit sharing with the main flow, the
//! far end's codes, sources and precedence, and how a metaflow run leaves the main flow.
//!
//! Timing: scripted digits of one code are 100 ms apart and the test metaflows' `digit_timeout`
//! is 1–1.5 s; codes meant to be separate are at least 2 s apart from the previous code's end.

use crate::engine::call::CallEnded;
use crate::engine::executor::FlowEnd;
use crate::engine::session::SessionEnd;
use crate::engine::simulate::Simulation;
use crate::engine::testkit::{
    ACCOUNT, apps, branches, completed, marker, markers, node, notes, run_with_store, script,
    validated,
};
use crate::fakeswitch::HangupBy;
use crate::modules::metaflow::testing::{
    PEER_DEVICE, SUB, apis, bridge_flow, bridged_call, codes, me, meta, metaflow_notes, peer,
    peer_presses, run_bridged, said, said_line, secs, store, unbridged_flow,
};
use crate::store::memory::MemStore;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn blind_transfer_pattern(extra: Value) -> Value {
    let mut metaflow = json!({"digit_timeout": 1000, "patterns": {
        "^2(\\d+)$": meta("transfer", json!({"transfer_type": "blind"}), json!({}))
    }});
    if let (Some(m), Some(extra)) = (metaflow.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    metaflow
}

fn transfers(sim: &Simulation) -> Vec<String> {
    apis(sim)
        .into_iter()
        .filter(|a| a.starts_with("uuid_transfer "))
        .collect()
}

// ------------------------------------------------------------------ detection

#[tokio::test]
async fn a_pattern_capture_reaches_the_node_and_an_exact_number_beats_patterns() {
    let by_pattern = json!({"digit_timeout": 1200, "patterns": {
        "^7(\\d\\d)(\\d)$": meta("transfer", json!({"transfer_type": "blind"}), json!({}))
    }});
    let with_exact = json!({"digit_timeout": 1200,
        "numbers": {"7101": said("exact")},
        "patterns": {"^7(\\d+)$": said("pattern")}});
    let (captured, exact) = tokio::join!(
        run_bridged(by_pattern, secs(4), "*7101@bridge+300ms"),
        run_bridged(with_exact, secs(4), "*7101@bridge+300ms"),
    );

    // The first capture is the target; the node saw collected + captures (timeline).
    assert_eq!(
        transfers(&captured),
        [format!("uuid_transfer {} 10 XML default", peer(&captured))]
    );
    let ran = metaflow_notes(&captured)
        .into_iter()
        .find(|n| n.starts_with("metaflow module transfer"))
        .expect("the node ran");
    for data in [
        r#""captures":["10","1"]"#,
        r#""collected":"7101""#,
        r#""dtmf_leg":"self""#,
    ] {
        assert!(ran.contains(data), "{ran}");
    }

    assert_eq!(codes(&exact), ["*7101 on self: tts"]);
    assert_eq!(apis(&exact), [said_line(&me(&exact), "exact")]);
}

#[tokio::test]
async fn a_digit_after_the_digit_timeout_is_not_part_of_the_code() {
    let metaflow = json!({"digit_timeout": 1000, "numbers": {
        "2": said("two"),
        "23": said("twenty-three"),
    }});
    let (slow, quick) = tokio::join!(
        // `3` comes 3 s after `2`: the code `2` ran alone, `3` is the main flow's.
        run_bridged(metaflow.clone(), secs(5), "*2@bridge+300ms,3@bridge+3400ms"),
        run_bridged(metaflow, secs(5), "*23@bridge+300ms"),
    );
    assert_eq!(codes(&slow), ["*2 on self: tts"]);
    assert_eq!(apis(&slow), [said_line(&me(&slow), "two")]);
    assert_eq!(codes(&quick), ["*23 on self: tts"]);
    assert_eq!(apis(&quick), [said_line(&me(&quick), "twenty-three")]);
}

#[tokio::test]
async fn each_digit_restarts_the_digit_timeout() {
    // 700 ms between digits, 1.5 s timeout: one code spanning 2.1 s.
    let metaflow = json!({"digit_timeout": 1500, "numbers": {"234": said("long")}});
    let digits = "*@bridge+300ms,2@bridge+1000ms,3@bridge+1700ms,4@bridge+2400ms";
    let sim = run_bridged(metaflow, secs(6), digits).await;
    assert_eq!(codes(&sim), ["*234 on self: tts"]);
    assert_eq!(apis(&sim), [said_line(&me(&sim), "long")]);
}

#[tokio::test]
async fn metaflow_children_follow_the_result_key() {
    // transfer without a target -> `no_target` -> hold_control (bridged: `_`) -> tts.
    let metaflow = json!({"digit_timeout": 1200, "numbers": {"2": meta(
        "transfer",
        json!({"transfer_type": "blind"}),
        json!({
            "_": said("transfer-default"),
            "no_target": meta("hold_control", json!({}), json!({
                "no_peer": said("no-peer"),
                "_": said("end"),
            })),
        }),
    )}});
    let sim = run_bridged(metaflow, secs(4), "*2@bridge+300ms").await;
    assert_eq!(
        apis(&sim),
        [
            format!("uuid_hold toggle {}", peer(&sim)),
            said_line(&me(&sim), "end"),
        ]
    );
    let ran: Vec<String> = metaflow_notes(&sim)
        .into_iter()
        .filter_map(|n| {
            n.strip_prefix("metaflow module ")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .collect();
    assert_eq!(ran, ["transfer", "hold_control", "tts"]);
}

// ------------------------------------------------------------------ the main flow's digits

const MENU: &str = "00000000000000000000000000000e0f";

/// A menu (no greeting, 1 attempt, 8 s for the first digit, up to 2 digits) with options `1`
/// and `*5`, then `after-menu`; metaflow code `9` speaks.
fn menu_store(metaflow: Value) -> Arc<MemStore> {
    let flow = node(
        "menu",
        json!({"id": MENU, "interdigit_timeout": 600}),
        json!({
            "1": marker("one", json!({})),
            "*5": marker("star-five", json!({})),
            "_": marker("after-menu", json!({})),
        }),
    );
    let store = store(flow, metaflow);
    store.put(
        ACCOUNT,
        "menus",
        MENU,
        json!({"retries": 1, "timeout": 8000, "max_extension_length": 2,
               "media": {"invalid_media": false}}),
    );
    store
}

#[tokio::test]
async fn a_code_pressed_inside_a_menu_is_not_the_menus_and_a_later_option_still_works() {
    let metaflow = json!({"digit_timeout": 1000, "numbers": {"9": said("nine")}});
    let script = script().dtmf("*9@500ms,1@3500ms").expect("digits");
    let sim = run_with_store(menu_store(metaflow), script).await;
    assert_eq!(codes(&sim), ["*9 on self: tts"]);
    assert_eq!(apis(&sim), [said_line(&me(&sim), "nine")]);
    // The menu saw `1` alone (with `*9` it would have been an invalid `*91`).
    assert_eq!(markers(&sim), ["one"]);
    assert_eq!(branches(&sim)[0], "1");
    assert!(completed(&sim), "{:?}", sim.report.end);
}

#[tokio::test]
async fn an_unmatched_code_goes_back_to_the_menu() {
    let metaflow = json!({"digit_timeout": 1000, "numbers": {"9": said("nine")}});
    let script = script().dtmf("*5@500ms").expect("digits");
    let sim = run_with_store(menu_store(metaflow), script).await;
    assert_eq!(codes(&sim), ["*5 on self: no match"]);
    assert!(apis(&sim).is_empty());
    assert_eq!(markers(&sim), ["star-five"]);
}

#[tokio::test]
async fn a_callflow_code_inside_a_menu_interrupts_the_menu() {
    // The menu does not wait out its 8 s and its exit prompt is never played (it would be,
    // were the branch taken only once the menu gave up): the metaflow callflow runs at once
    // and the flow then resumes at the menu's `_`.
    let metaflow = json!({"digit_timeout": 1000, "numbers": {
        "6": meta("callflow", json!({"id": SUB}), json!({}))
    }});
    let store = menu_store(metaflow);
    store.put(
        ACCOUNT,
        "callflows",
        SUB,
        json!({"numbers": ["2000"], "flow": validated(marker("sub", json!({})))}),
    );
    let script = script().dtmf("*6@500ms").expect("digits");
    let sim = run_with_store(store, script).await;
    assert_eq!(codes(&sim), ["*6 on self: callflow"]);
    assert_eq!(markers(&sim), ["sub", "after-menu"]);
    assert!(
        !apps(&sim).iter().any(|a| a.contains("vm-goodbye")),
        "{:?}",
        apps(&sim)
    );
    assert!(completed(&sim), "{:?}", sim.report.end);
}

// ------------------------------------------------------------------ the far end

async fn run_listening(listen_on: &str) -> Simulation {
    // `play` to `self`: the presser hears it (the far end's `self` is `bleg`).
    let metaflow = json!({"digit_timeout": 1000, "listen_on": listen_on, "numbers": {
        "1": meta("play", json!({"id": "/notice.wav", "leg": "self"}), json!({}))
    }});
    // The far end presses *1 at 0.5 s, the caller at 2.5 s.
    let script = peer_presses(
        bridged_call(secs(7), "*1@bridge+2500ms"),
        "*1",
        Duration::from_millis(500),
    );
    run_with_store(store(bridge_flow(json!({})), metaflow), script).await
}

fn bridge_arg(sim: &Simulation) -> String {
    apps(sim)
        .into_iter()
        .find_map(|a| a.strip_prefix("bridge ").map(str::to_string))
        .expect("bridged")
}

fn diverts(sim: &Simulation) -> bool {
    sim.transcript
        .command_lines()
        .iter()
        .any(|l| l == "divert_events on")
}

const PEER_BINDING: &str = "[^^;execute_on_answer=bind_digit_action callflowd_metaflow,~^[*][0-9*#]+$,metaflow,peer,self,peer;bind_digit_digit_timeout=1000;leg_timeout=20]user/peer@test.callflowd";

fn notice(sim: &Simulation, legs: &str) -> String {
    format!("uuid_broadcast {} '/notice.wav' {legs}", me(sim))
}

#[tokio::test]
async fn listen_on_self_ignores_the_far_ends_codes() {
    let sim = run_listening("self").await;
    assert_eq!(apis(&sim), [notice(&sim, "aleg")]);
    assert_eq!(codes(&sim), ["*1 on self: play"]);
    assert!(
        !metaflow_notes(&sim)
            .iter()
            .any(|n| n.starts_with("peer digits"))
    );
    assert!(!diverts(&sim), "divert_events only when the peer is heard");
    assert!(
        !bridge_arg(&sim).contains("bind_digit"),
        "{}",
        bridge_arg(&sim)
    );
}

#[tokio::test]
async fn listen_on_peer_acts_on_the_far_ends_codes_only() {
    let sim = run_listening("peer").await;
    assert_eq!(apis(&sim), [notice(&sim, "bleg")]);
    assert_eq!(codes(&sim), ["*1 on peer: play"]);
    assert!(diverts(&sim));
    assert!(
        bridge_arg(&sim).ends_with(PEER_BINDING),
        "{}",
        bridge_arg(&sim)
    );
    let ran = metaflow_notes(&sim)
        .into_iter()
        .find(|n| n.starts_with("metaflow module"))
        .unwrap_or_default();
    assert!(ran.contains(r#""dtmf_leg":"peer""#), "{ran}");
}

#[tokio::test]
async fn listen_on_both_acts_on_either_leg() {
    let sim = run_listening("both").await;
    assert_eq!(apis(&sim), [notice(&sim, "bleg"), notice(&sim, "aleg")]);
    assert_eq!(codes(&sim), ["*1 on peer: play", "*1 on self: play"]);
    assert!(diverts(&sim));
    assert!(bridge_arg(&sim).ends_with(PEER_BINDING));
}

#[tokio::test]
async fn a_far_end_blind_transfer_sends_the_caller_away() {
    // Kazoo: the presser is the transferor, the other leg the transferee. The call leaves
    // callflowd: no hangup, no children.
    let metaflow = blind_transfer_pattern(json!({}));
    let sim = crate::modules::metaflow::testing::run_pressed_by_peer(metaflow, "*2101", "").await;
    assert_eq!(
        transfers(&sim),
        [format!("uuid_transfer {} 101 XML default", me(&sim))]
    );
    assert_eq!(codes(&sim), ["*2101 on peer: transfer"]);
    assert_eq!(sim.report.end, SessionEnd::Flow(FlowEnd::Released));
    assert_eq!(
        sim.transcript.transferred_to.as_deref(),
        Some("101 XML default")
    );
}

// ------------------------------------------------------------------ the end of the call

#[tokio::test]
async fn the_caller_hanging_up_mid_code_runs_no_metaflow_and_ends_cleanly() {
    let metaflow = json!({"digit_timeout": 3000, "numbers": {"2": said("two")}});
    let script =
        bridged_call(secs(10), "*2@bridge+300ms").hangup_after(Duration::from_millis(1500));
    let sim = run_with_store(store(bridge_flow(json!({})), metaflow), script).await;
    assert!(codes(&sim).is_empty(), "{:?}", codes(&sim));
    assert!(apis(&sim).is_empty(), "{:?}", apis(&sim));
    assert!(
        matches!(
            sim.report.end,
            SessionEnd::Flow(FlowEnd::Ended(CallEnded::HungUp(_)))
        ),
        "{:?}",
        sim.report.end
    );
    assert_eq!(
        sim.transcript.hangup.as_ref().map(|h| h.by.clone()),
        Some(HangupBy::Caller)
    );
    assert!(sim.transcript.controller_closed_after_hangup_complete);
}

#[tokio::test]
async fn the_unhold_key_is_disarmed_when_the_bridge_ends() {
    // Held (unhold key 1), then `*6` runs a callflow that collects one digit once the bridge
    // is over: its `1` is the collection's, not an unhold.
    let metaflow = json!({"digit_timeout": 1000, "numbers": {
        "4": meta("hold", json!({"unhold_key": "1"}), json!({})),
        "6": meta("callflow", json!({"id": SUB}), json!({})),
    }});
    let store = store(bridge_flow(json!({})), metaflow);
    store.put(
        ACCOUNT,
        "callflows",
        SUB,
        json!({"numbers": ["2000"], "flow": validated(node(
            "collect_dtmf",
            json!({"max_digits": 1, "timeout": 8000, "collection_name": "x"}),
            json!({"_": node("branch_variable", json!({"variable": "x"}), json!({
                "1": marker("one", json!({})),
                "_": marker("other", json!({})),
            }))}),
        ))}),
    );
    let script = bridged_call(secs(5), "*4@bridge+300ms,*6@bridge+2500ms,1@bridge+7s");
    let sim = run_with_store(store, script).await;
    let (me, peer) = (me(&sim), peer(&sim));
    assert_eq!(markers(&sim), ["one"]);
    assert_eq!(
        apis(&sim),
        [
            format!("uuid_hold {peer}"),
            format!("uuid_kill {peer}"),
            format!("uuid_break {me}"),
        ]
    );
}

// ------------------------------------------------------------------ sources and precedence

const ALICE_DEVICE: &str = "dddddddddddddddddddddddddddd0f0a";
const ALICE: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeee0f0a";

/// Every source defines codes; each higher source shadows one code of the next.
fn layered_store() -> Arc<MemStore> {
    let store = store(
        unbridged_flow(json!({})),
        json!({"numbers": {"1": said("callflow-1")}}),
    );
    store.put(
        ACCOUNT,
        "users",
        ALICE,
        json!({"first_name": "Alice", "metaflows": {
            "digit_timeout": 1500,
            "numbers": {"1": said("user-1"), "2": said("user-2")}}}),
    );
    store.put(
        ACCOUNT,
        "devices",
        ALICE_DEVICE,
        json!({"name": "alice", "sip": {"username": "alice"}, "owner_id": ALICE,
               "metaflows": {"binding_digit": "*", "listen_on": "both",
                   "numbers": {"2": said("device-2"), "3": said("device-3")}}}),
    );
    store.put(
        ACCOUNT,
        "metaflows",
        ACCOUNT,
        json!({"binding_digit": "#", "listen_on": "self", "digit_timeout": 400,
               "numbers": {"3": said("account-3"), "4": said("account-4")}}),
    );
    store
}

async fn run_code(code: char) -> Simulation {
    let script = script()
        .var("sip_auth_username", "alice")
        .dtmf(&format!("*{code}@playback+300ms"))
        .expect("digits");
    run_with_store(layered_store(), script).await
}

#[tokio::test]
async fn sources_merge_callflow_then_user_then_device_then_account() {
    let (one, two, three, four) =
        tokio::join!(run_code('1'), run_code('2'), run_code('3'), run_code('4'));
    for (sim, expected) in [
        (&one, "callflow-1"),
        (&two, "user-2"),
        (&three, "device-3"),
        (&four, "account-4"),
    ] {
        assert_eq!(apis(sim), [said_line(&me(sim), expected)]);
    }
    // Settings: binding and listen_on from the device, the timeout from the user.
    assert!(
        notes(&one)
            .iter()
            .any(|n| n == "metaflows on (binding *, listen_on Both, 4 numbers, 0 patterns)"),
        "{:?}",
        notes(&one)
    );
    assert!(diverts(&one), "the device listens to both legs");
}

#[tokio::test]
async fn no_metaflows_anywhere_means_no_detection() {
    let store = store(
        unbridged_flow(json!({"_": marker("after", json!({}))})),
        json!({}),
    );
    store.put(
        ACCOUNT,
        "devices",
        PEER_DEVICE,
        json!({"name": "peer", "sip": {"username": "peer"}}),
    );
    let script = script().dtmf("*2@playback+300ms").expect("digits");
    let sim = run_with_store(store, script).await;
    assert!(metaflow_notes(&sim).is_empty());
    assert!(!notes(&sim).iter().any(|n| n.starts_with("metaflows on")));
    assert!(!diverts(&sim));
    assert_eq!(markers(&sim), ["after"]);
}

// ------------------------------------------------------------------ codes during `race`

/// Serves `GET /pivot`, answering `reply` after `delay`; returns the URL.
async fn slow_pivot_server(delay: Duration, reply: Value) -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route(
        "/pivot",
        get(move || {
            let reply = reply.clone();
            async move {
                tokio::time::sleep(delay).await;
                axum::Json(reply)
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}/pivot")
}

fn pivot_flow(url: &str) -> Value {
    node(
        "pivot",
        json!({"voice_url": url, "req_timeout_ms": 5000}),
        json!({"_": marker("fallback", json!({}))}),
    )
}

#[tokio::test]
async fn a_code_completing_during_an_http_request_runs_and_the_request_goes_on() {
    let url = slow_pivot_server(
        Duration::from_secs(4),
        json!({"module": "set_variable", "data": {"variable": "marker", "value": "pivot"}}),
    )
    .await;
    let metaflow = json!({"digit_timeout": 1000, "numbers": {"1": said("during")}});
    let script = script().dtmf("*1@300ms").expect("digits");
    let sim = run_with_store(store(pivot_flow(&url), metaflow), script).await;
    assert_eq!(codes(&sim), ["*1 on self: tts"]);
    assert_eq!(apis(&sim), [said_line(&me(&sim), "during")]);
    assert_eq!(markers(&sim), ["pivot"]);
    let position = |pred: &dyn Fn(&crate::fakeswitch::Received) -> bool| {
        sim.transcript.commands.iter().position(pred)
    };
    let spoken = position(&|c| c.line.starts_with("api uuid_broadcast"));
    let replied = position(&|c| c.app_arg() == Some("marker=pivot"));
    assert!(
        spoken.is_some() && spoken < replied,
        "the code ran while the request was pending"
    );
    assert!(completed(&sim), "{:?}", sim.report.end);
}

#[tokio::test]
async fn a_callflow_code_during_an_http_request_interrupts_it() {
    let url = slow_pivot_server(
        Duration::from_secs(4),
        json!({"module": "set_variable", "data": {"variable": "marker", "value": "pivot"}}),
    )
    .await;
    let metaflow = json!({"digit_timeout": 1000, "numbers": {
        "6": meta("callflow", json!({"id": SUB}), json!({}))
    }});
    let store = store(pivot_flow(&url), metaflow);
    store.put(
        ACCOUNT,
        "callflows",
        SUB,
        json!({"numbers": ["2000"], "flow": validated(marker("sub", json!({})))}),
    );
    let script = script().dtmf("*6@300ms").expect("digits");
    let sim = run_with_store(store, script).await;
    // The pivot's reply is never used; the flow resumes at the pivot's `_`.
    assert_eq!(markers(&sim), ["sub", "fallback"]);
    assert!(completed(&sim), "{:?}", sim.report.end);
}

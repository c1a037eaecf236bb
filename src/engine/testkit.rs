//! Helpers for tests that run flows through the real engine and the fake switch.

use crate::engine::call::CallEnded;
use crate::engine::executor::FlowEnd;
use crate::engine::session::SessionEnd;
use crate::engine::simulate::{Simulation, simulate};
use crate::engine::{EngineConfig, EngineContext};
use crate::fakeswitch::CallScript;
use crate::store::Account;
use crate::store::memory::MemStore;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The account every test call belongs to.
pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
/// The number the test callflow answers.
pub const NUMBER: &str = "1000";

/// A store holding one account (realm `test.callflowd`) and a callflow on [`NUMBER`].
pub fn store_with_flow(flow: Value) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    store.add_account(Account {
        id: ACCOUNT.into(),
        name: "test".into(),
        realm: Some("test.callflowd".into()),
    });
    store.put(
        ACCOUNT,
        "callflows",
        "cf000000000000000000000000000001",
        json!({"numbers": [NUMBER], "flow": flow}),
    );
    store
}

/// Engine settings with short timeouts so a broken test fails fast.
pub fn config() -> EngineConfig {
    EngineConfig {
        command_timeout: Duration::from_secs(5),
        call_deadline: Duration::from_secs(60),
        linger: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

/// An engine context over `store`.
pub fn ctx(store: Arc<MemStore>) -> Arc<EngineContext> {
    EngineContext::new(config(), store)
}

/// A call to [`NUMBER`] in [`ACCOUNT`].
pub fn script() -> CallScript {
    CallScript::new(NUMBER).account(Some(ACCOUNT))
}

/// `flow` validated like the API would (defaults written in); panics when it is invalid.
pub fn validated(flow: Value) -> Value {
    let mut flow = flow;
    let mut errors = crate::callflow::errors::FieldErrors::new();
    crate::modules::validate_flow(&mut flow, "flow", &mut errors);
    assert!(
        errors.is_empty(),
        "test flow is invalid: {}",
        errors.to_json()
    );
    flow
}

/// Stores one more callflow (validated) in [`ACCOUNT`] under `id`.
pub fn put_callflow(store: &MemStore, id: &str, numbers: Value, flow: Value) {
    store.put(
        ACCOUNT,
        "callflows",
        id,
        json!({"numbers": numbers, "flow": validated(flow)}),
    );
}

/// Runs `flow` (validated like the API would, so defaults apply) for one scripted call.
pub async fn run(flow: Value, script: CallScript) -> Simulation {
    run_with_store(store_with_flow(validated(flow)), script).await
}

/// Runs a call against a prepared store.
pub async fn run_with_store(store: Arc<MemStore>, script: CallScript) -> Simulation {
    run_with_config(store, config(), script).await
}

/// Runs a call against a prepared store with custom engine settings (default account, limits).
pub async fn run_with_config(
    store: Arc<MemStore>,
    config: EngineConfig,
    script: CallScript,
) -> Simulation {
    let ctx = EngineContext::new(config, store);
    match tokio::time::timeout(Duration::from_secs(60), simulate(ctx, script)).await {
        Ok(Ok(simulation)) => simulation,
        Ok(Err(error)) => panic!("simulation failed: {error}"),
        Err(_) => panic!("simulation did not finish within 60 s"),
    }
}

/// The apps the switch was asked to execute, as `"app arg"` strings (arg omitted when empty).
pub fn apps(simulation: &Simulation) -> Vec<String> {
    simulation
        .transcript
        .requested_apps()
        .into_iter()
        .map(|(app, arg)| {
            if arg.is_empty() {
                app
            } else {
                format!("{app} {arg}")
            }
        })
        .collect()
}

/// The executor's branch decisions, in order.
pub fn branches(simulation: &Simulation) -> Vec<String> {
    simulation
        .report
        .timeline
        .iter()
        .filter_map(|(_, entry)| match entry {
            crate::engine::call::TimelineEntry::Branch { key } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The modules the executor entered, in order.
pub fn modules_run(simulation: &Simulation) -> Vec<String> {
    simulation
        .report
        .timeline
        .iter()
        .filter_map(|(_, entry)| match entry {
            crate::engine::call::TimelineEntry::Module { module, .. } => Some(module.clone()),
            _ => None,
        })
        .collect()
}

/// Timeline notes (limits reached, routing, hangups), in order.
pub fn notes(simulation: &Simulation) -> Vec<String> {
    simulation
        .report
        .timeline
        .iter()
        .filter_map(|(_, entry)| match entry {
            crate::engine::call::TimelineEntry::Note { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// A marker node: `set_variable marker=<value>`, visible as the app `set marker=<value>`.
pub fn marker(value: &str, children: Value) -> Value {
    node(
        "set_variable",
        json!({"variable": "marker", "value": value}),
        children,
    )
}

/// The `set marker=...` values the switch was asked to run, in order.
pub fn markers(simulation: &Simulation) -> Vec<String> {
    apps(simulation)
        .into_iter()
        .filter_map(|a| a.strip_prefix("set marker=").map(str::to_string))
        .collect()
}

/// True when the flow ran to its end and the engine hung up NORMAL_CLEARING.
pub fn completed(simulation: &Simulation) -> bool {
    simulation.report.end == SessionEnd::Flow(FlowEnd::Hangup("NORMAL_CLEARING".into()))
        && simulation.transcript.hangup_cause() == Some("NORMAL_CLEARING")
}

/// True when the flow ended because the channel hung up under it (caller hangup).
pub fn ended_by_hangup(simulation: &Simulation) -> bool {
    matches!(
        simulation.report.end,
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::HungUp(_)))
    )
}

/// A call whose caller hangs up 300 ms in while every app waits 2 s to start: the first app
/// the flow sends never runs, so the module sees the hangup instead of its completion.
pub fn caller_gone_before_first_app() -> CallScript {
    script()
        .app_start_delay(Duration::from_secs(2))
        .hangup_after(Duration::from_millis(300))
}

/// A call whose media lasts 5 s and whose caller hangs up 800 ms in (mid-prompt).
pub fn caller_hangs_up_mid_media() -> CallScript {
    script()
        .media_time(Duration::from_secs(5))
        .hangup_after(Duration::from_millis(800))
}

/// Shorthand for a node.
pub fn node(module: &str, data: Value, children: Value) -> Value {
    json!({"module": module, "data": data, "children": children})
}

/// [`store_with_flow`] with `flow` validated first, like [`run`] does.
pub fn store_for(flow: Value) -> Arc<MemStore> {
    store_with_flow(validated(flow))
}

/// Adds another (validated) callflow to the store, routed by `numbers` and `patterns`.
pub fn add_callflow(store: &MemStore, id: &str, numbers: &[&str], patterns: &[&str], flow: Value) {
    store.put(
        ACCOUNT,
        "callflows",
        id,
        json!({"numbers": numbers, "patterns": patterns, "flow": validated(flow)}),
    );
}

/// A call in [`ACCOUNT`] dialling `number` (for pattern callflows and feature codes).
pub fn script_to(number: &str) -> CallScript {
    CallScript::new(number).account(Some(ACCOUNT))
}

/// Test hook: runs a call like [`run_with_store`], but with `kvs` put into the call's key/value
/// store before the flow starts — e.g. `temporal_now` ([`crate::callflow::temporal::NOW_OVERRIDE_KEY`]),
/// which no flow can set. The session's private steps are replayed here with the same public
/// pieces: the set-up commands (`connect`, `myevents plain`, `linger`, `resume`), the account from
/// the channel's `account_id`, routing of the dialled number, [`run_flow`](crate::engine::executor::run_flow),
/// and the hang-up the flow's end asks for. It skips the caller-device lookup and the metrics.
pub async fn run_with_kvs(
    store: Arc<MemStore>,
    script: CallScript,
    kvs: Vec<(&str, Value)>,
) -> Simulation {
    use crate::engine::call::Call;
    use crate::engine::executor::{FlowEnd, run_flow};
    use crate::engine::session::{SessionEnd, SessionReport};
    use crate::store::StoreRead;
    use freeswitch_esl_tokio::{EslClient, EventFormat};

    let ctx = ctx(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener address");
    let switch = tokio::spawn(crate::fakeswitch::dial(addr, script));
    let (stream, _) = listener.accept().await.expect("the fake switch connects");
    let (client, events) = EslClient::accept_outbound_stream(stream);
    let channel = client.connect_session().await.expect("connect");
    client.myevents(EventFormat::Plain).await.expect("myevents");
    client
        .linger(Some(ctx.config.linger))
        .await
        .expect("linger");
    client.resume().await.expect("resume");
    client.set_command_timeout(ctx.config.command_timeout);

    let mut call = Call::new(client, events, channel, ctx);
    call.record_timeline();
    call.account_id = ACCOUNT.to_string();
    for (key, value) in kvs {
        call.kvs.insert(key.to_string(), value);
    }
    let number = call.destination_number().unwrap_or_default().to_string();
    let route = store
        .routing()
        .lookup(ACCOUNT, &number)
        .expect("the dialled number has a callflow");
    call.callflow_id = route.callflow_id.to_string();
    if let Some(capture) = &route.capture_group {
        call.kvs
            .insert("capture_group".into(), Value::String(capture.clone()));
    }
    let flow = crate::modules::callflow::load(&call, &route.callflow_id).expect("callflow loads");
    let end = run_flow(&mut call, flow).await;
    if let FlowEnd::Hangup(cause) = &end {
        if !call.is_over() {
            let _ = call.hangup(cause).await;
        }
    }
    call.wait_hangup_complete(call.ctx.config.linger).await;
    let _ = call.client().disconnect().await;
    let report = SessionReport {
        end: SessionEnd::Flow(end),
        uuid: call.uuid.clone(),
        timeline: call.take_timeline(),
    };
    let transcript = tokio::time::timeout(Duration::from_secs(30), switch)
        .await
        .expect("the fake switch finishes")
        .expect("fake switch task")
        .expect("fake switch I/O");
    Simulation { report, transcript }
}

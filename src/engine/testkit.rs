//! Helpers for tests that run flows through the real engine and the fake switch.

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

/// Runs `flow` (validated like the API would, so defaults apply) for one scripted call.
pub async fn run(flow: Value, script: CallScript) -> Simulation {
    let mut flow = flow;
    let mut errors = crate::callflow::errors::FieldErrors::new();
    crate::modules::validate_flow(&mut flow, "flow", &mut errors);
    assert!(
        errors.is_empty(),
        "test flow is invalid: {}",
        errors.to_json()
    );
    run_with_store(store_with_flow(flow), script).await
}

/// Runs a call against a prepared store.
pub async fn run_with_store(store: Arc<MemStore>, script: CallScript) -> Simulation {
    match tokio::time::timeout(Duration::from_secs(60), simulate(ctx(store), script)).await {
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

/// Shorthand for a node.
pub fn node(module: &str, data: Value, children: Value) -> Value {
    json!({"module": module, "data": data, "children": children})
}

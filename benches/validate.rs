//! Validation cost of a large callflow: 1,000 nodes (menus fanning out to plays and hangups).
//!
//! Run: `cargo bench --bench validate`.

use callflowd::callflow::errors::FieldErrors;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn node(module: &str, data: Value, children: Value) -> Value {
    json!({"module": module, "data": data, "children": children})
}

/// A wide tree of about `count` nodes: `answer` -> `branch_variable` with N menu children, each
/// `collect_dtmf` -> `branch_variable` with ten `play` -> `hangup` options (22 nodes per menu).
fn big_flow(count: usize) -> Value {
    let menus = (count.saturating_sub(2)) / 22;
    let mut top = serde_json::Map::new();
    for m in 0..menus {
        let mut options = serde_json::Map::new();
        for k in 0..10 {
            options.insert(
                k.to_string(),
                node(
                    "play",
                    json!({"id": format!("ivr/menu-{m}-option-{k}.wav")}),
                    json!({"_": node("hangup", json!({}), json!({}))}),
                ),
            );
        }
        top.insert(
            m.to_string(),
            node(
                "collect_dtmf",
                json!({"max_digits": 1, "collection_name": "option"}),
                json!({"_": node("branch_variable", json!({"variable": "option"}), Value::Object(options))}),
            ),
        );
    }
    node(
        "answer",
        json!({}),
        json!({"_": node("branch_variable", json!({"variable": "department"}), Value::Object(top))}),
    )
}

fn count_nodes(v: &Value) -> usize {
    1 + v["children"]
        .as_object()
        .map_or(0, |c| c.values().map(count_nodes).sum())
}

fn main() {
    let flow = big_flow(1000);
    let nodes = count_nodes(&flow);
    let doc = json!({"numbers": ["1000"], "flow": flow});
    let mut samples: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let mut copy = doc.clone();
        let start = Instant::now();
        let mut errors = FieldErrors::new();
        callflowd::modules::validate_flow(&mut copy["flow"], "flow", &mut errors);
        samples.push(start.elapsed());
        assert!(errors.is_empty(), "{}", errors.to_json());
    }
    samples.sort_unstable();
    println!(
        "validate a {nodes}-node flow (module schemas + defaults): p50 {:.2?}  p99 {:.2?}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100]
    );
    let body = serde_json::to_vec(&json!({"data": doc})).unwrap_or_default();
    let mut samples: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut data = parsed["data"].as_object().cloned().unwrap_or_default();
        let result = callflowd::callflow::validate::validate_callflow(&mut data);
        samples.push(start.elapsed());
        assert!(result.is_ok(), "{result:?}");
    }
    samples.sort_unstable();
    println!(
        "parse + full document validation ({} KB body): p50 {:.2?}  p99 {:.2?}",
        body.len() / 1024,
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100]
    );
}

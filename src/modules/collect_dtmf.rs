//! `collect_dtmf`: collects digits into a named collection that later modules read
//! (`branch_variable` with the collection name, `pivot` sends them).
//!
//! ESL: none — digits come from DTMF events, with Kazoo's timeouts: `timeout` for the first
//! digit, `interdigit_timeout` between digits, a terminator or `max_digits` ends it; digits typed
//! during an earlier prompt count. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded, Collect};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The `collect_dtmf` module.
pub struct CollectDtmf;

/// `collect_dtmf` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Most digits to collect.
    #[serde(default = "one")]
    pub max_digits: usize,
    /// Wait for the first digit (ms).
    #[serde(default = "five_s")]
    pub timeout: u64,
    /// Wait between digits (ms).
    #[serde(default = "two_s")]
    pub interdigit_timeout: u64,
    /// Keys that end collection.
    #[serde(default = "hash", alias = "terminator")]
    pub terminators: Vec<String>,
    /// Where the digits are kept.
    #[serde(default = "default_name")]
    pub collection_name: String,
}

fn one() -> usize {
    1
}
fn five_s() -> u64 {
    5000
}
fn two_s() -> u64 {
    2000
}
fn hash() -> Vec<String> {
    vec!["#".into()]
}
fn default_name() -> String {
    "default".into()
}

/// Kvs key of the DTMF collections map.
pub const COLLECTIONS_KEY: &str = "dtmf_collections";

/// A collection's digits, if any were collected.
pub fn collected<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.kvs.get(COLLECTIONS_KEY)?.get(name)?.as_str()
}

impl CallflowModule for CollectDtmf {
    const NAME: &'static str = "collect_dtmf";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Collect DTMF digits into a named collection",
            "properties": {
                "max_digits": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 600000, "default": 5000},
                "interdigit_timeout": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 2000},
                "terminators": {"type": "array", "default": ["#"],
                    "items": {"type": "string", "enum": ["1","2","3","4","5","6","7","8","9","*","0","#"]}},
                "collection_name": {"type": "string", "minLength": 1, "maxLength": 64, "default": "default"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let collect = Collect {
            max_digits: data.max_digits.max(1),
            timeout: Duration::from_millis(data.timeout),
            interdigit: Duration::from_millis(data.interdigit_timeout),
            terminators: data.terminators.concat(),
        };
        let digits = call.collect_digits(&collect).await?;
        tracing::debug!(collection = %data.collection_name, %digits, "collected DTMF");
        if let Value::Object(collections) = call
            .kvs
            .entry(COLLECTIONS_KEY.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            collections.insert(data.collection_name, Value::String(digits));
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;
    use std::time::Duration;

    /// collect_dtmf, then branch on the collection.
    fn collect(data: serde_json::Value, collection: &str) -> serde_json::Value {
        node(
            "collect_dtmf",
            data,
            json!({"_": node("branch_variable", json!({"variable": collection}), json!({
                "12": marker("twelve", json!({})),
                "1": marker("one", json!({})),
                "4": marker("four", json!({})),
                "_": marker("nothing", json!({}))
            }))}),
        )
    }

    #[tokio::test]
    async fn collects_until_the_terminator_without_any_esl() {
        let script = script().dtmf("12#@300ms").expect("digits");
        let sim = run(
            collect(json!({"max_digits": 4, "timeout": 3000}), "default"),
            script,
        )
        .await;
        assert_eq!(apps(&sim), ["set marker=twelve"]);
        assert_eq!(branches(&sim)[..2], ["_", "12"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn max_digits_and_interdigit_timeout_end_collection() {
        let sim = run(
            collect(json!({"max_digits": 2, "timeout": 3000}), "default"),
            script().dtmf("123@300ms").expect("digits"),
        )
        .await;
        assert_eq!(markers(&sim), ["twelve"]);

        let sim = run(
            collect(
                json!({"max_digits": 4, "timeout": 3000, "interdigit_timeout": 400}),
                "default",
            ),
            script().dtmf("1@300ms").expect("digits"),
        )
        .await;
        assert_eq!(markers(&sim), ["one"]);
    }

    #[tokio::test]
    async fn timeout_with_nothing_pressed_continues_empty() {
        let sim = run(collect(json!({"timeout": 300}), "default"), script()).await;
        assert_eq!(markers(&sim), ["nothing"]);
    }

    #[tokio::test]
    async fn digits_typed_during_a_prompt_count_and_collections_are_named() {
        let flow = node(
            "play",
            json!({"id": "prompt.wav", "terminators": []}),
            json!({"_": collect(json!({"collection_name": "pin", "timeout": 300}), "pin")}),
        );
        let script = script()
            .file_duration("prompt", Duration::from_millis(800))
            .dtmf_after_app('4', "playback", 1, Duration::from_millis(200));
        let sim = run(flow, script).await;
        assert_eq!(
            apps(&sim),
            [
                "answer",
                "set playback_terminators=none",
                "playback prompt.wav",
                "set marker=four"
            ]
        );
    }

    #[tokio::test]
    async fn caller_hangup_while_collecting_ends_the_flow() {
        let sim = run(
            collect(json!({"timeout": 5000}), "default"),
            script().hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert!(markers(&sim).is_empty());
    }
}

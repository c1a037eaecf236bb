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

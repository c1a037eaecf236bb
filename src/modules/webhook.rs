//! `webhook`: tells an outside system about the call (CRM pop-up, logging) without delaying it.
//!
//! HTTP, in a background task: `http_verb` (POST JSON by default, or GET with query parameters)
//! to `uri` with the call's details and `custom_data`; a failed delivery (error, timeout, 5xx,
//! 429) is retried up to `retries` times with 1 s, 2 s, 4 s... backoff. At most
//! `WEBHOOKS_IN_FLIGHT` deliveries run at once; beyond that a delivery is dropped with a warning.
//! ESL: none. Children: `_` at once.

use super::pivot::request_fields;
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The `webhook` module.
pub struct Webhook;

/// `webhook` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Receiver.
    pub uri: String,
    /// `get` or `post`.
    #[serde(default = "post")]
    pub http_verb: String,
    /// Extra attempts after a failure.
    #[serde(default = "two")]
    pub retries: u32,
    /// Extra fields sent along.
    #[serde(default)]
    pub custom_data: Map<String, Value>,
}

fn post() -> String {
    "post".into()
}
fn two() -> u32 {
    2
}

/// Timeout of one delivery attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl CallflowModule for Webhook {
    const NAME: &'static str = "webhook";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Notify an HTTP endpoint about the call, asynchronously",
            "required": ["uri"],
            "properties": {
                "uri": {"type": "string", "pattern": "^https?://", "maxLength": 2048},
                "http_verb": {"type": "string", "enum": ["get", "post", "GET", "POST"], "default": "post"},
                "retries": {"type": "integer", "minimum": 0, "maximum": 4, "default": 2},
                "custom_data": {"type": "object", "maxProperties": 50,
                    "additionalProperties": {"type": ["string", "number", "boolean"]}}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let Ok(permit) = call.ctx.webhook_slots.clone().try_acquire_owned() else {
            tracing::warn!(uri = %data.uri, "too many webhooks in flight; this one is dropped");
            metrics::counter!("callflowd_webhooks_dropped_total").increment(1);
            return Ok(Next::default_child());
        };
        let mut fields = request_fields(call);
        for (key, value) in &data.custom_data {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            fields.push((key.clone(), text));
        }
        let client = call.ctx.http.clone();
        tokio::spawn(async move {
            let _permit = permit;
            deliver(client, data, fields).await;
        });
        Ok(Next::default_child())
    }
}

async fn deliver(client: reqwest::Client, data: Data, fields: Vec<(String, String)>) {
    let attempts = data.retries + 1;
    for attempt in 1..=attempts {
        let request = if data.http_verb.eq_ignore_ascii_case("get") {
            client.get(&data.uri).query(&fields)
        } else {
            let body: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            client.post(&data.uri).json(&body)
        };
        let outcome = request.timeout(ATTEMPT_TIMEOUT).send().await;
        let retryable = match &outcome {
            Ok(response) if response.status().is_success() => {
                metrics::counter!("callflowd_webhooks_total", "result" => "delivered").increment(1);
                return;
            }
            Ok(response) => {
                let status = response.status();
                status.is_server_error() || status.as_u16() == 429
            }
            Err(_) => true,
        };
        let detail = match &outcome {
            Ok(response) => format!("HTTP {}", response.status()),
            Err(error) => error.to_string(),
        };
        if !retryable || attempt == attempts {
            tracing::warn!(uri = %data.uri, attempt, %detail, "webhook delivery failed");
            metrics::counter!("callflowd_webhooks_total", "result" => "failed").increment(1);
            return;
        }
        tracing::debug!(uri = %data.uri, attempt, %detail, "webhook attempt failed; retrying");
        tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(4))).await;
    }
}

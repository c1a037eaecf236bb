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

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use axum::Router;
    use axum::extract::Query;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}/hook")
    }

    /// Waits (up to 10 s) until `done` holds; the webhook runs in the background.
    async fn eventually(done: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done()
    }

    fn hook(uri: &str, extra: Value) -> Value {
        let mut data = json!({"uri": uri, "custom_data": {"crm": "acme"}});
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        node("webhook", data, json!({"_": marker("after", json!({}))}))
    }

    #[tokio::test]
    async fn delivers_in_the_background_without_delaying_the_call() {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let answered = Arc::new(AtomicBool::new(false));
        let (record, flag) = (bodies.clone(), answered.clone());
        let uri = serve(Router::new().route(
            "/hook",
            post(move |axum::Json(body): axum::Json<Value>| {
                let (record, flag) = (record.clone(), flag.clone());
                async move {
                    record.lock().expect("lock").push(body);
                    // A slow receiver: the call must not wait for it.
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    flag.store(true, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        ))
        .await;
        let sim = run(hook(&uri, json!({})), script()).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(branches(&sim)[0], "_");
        assert!(completed(&sim), "{:?}", sim.report.end);
        assert!(
            !answered.load(Ordering::SeqCst),
            "the call finished while the receiver was still busy"
        );
        assert!(eventually(|| !bodies.lock().expect("lock").is_empty()).await);
        let body = bodies.lock().expect("lock")[0].clone();
        assert_eq!(body["Call-ID"], json!(sim.report.uuid));
        assert_eq!(body["Account-ID"], json!(ACCOUNT));
        assert_eq!(body["crm"], json!("acme"));
    }

    #[tokio::test]
    async fn retries_after_a_server_error() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let uri = serve(Router::new().route(
            "/hook",
            post(move || {
                let counter = counter.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        ))
        .await;
        let sim = run(hook(&uri, json!({"retries": 2})), script()).await;
        assert_eq!(markers(&sim), ["after"]);
        assert!(eventually(|| hits.load(Ordering::SeqCst) >= 2).await);
        // Delivered on the second attempt: no third one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let uri = serve(Router::new().route(
            "/hook",
            post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    StatusCode::BAD_REQUEST
                }
            }),
        ))
        .await;
        let sim = run(hook(&uri, json!({"retries": 2})), script()).await;
        assert_eq!(markers(&sim), ["after"]);
        assert!(eventually(|| hits.load(Ordering::SeqCst) >= 1).await);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn get_sends_query_parameters() {
        let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
        let record = seen.clone();
        let uri = serve(Router::new().route(
            "/hook",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let record = record.clone();
                async move {
                    record.lock().expect("lock").push(q);
                    StatusCode::OK
                }
            }),
        ))
        .await;
        let sim = run(hook(&uri, json!({"http_verb": "get"})), script()).await;
        assert_eq!(markers(&sim), ["after"]);
        assert!(eventually(|| !seen.lock().expect("lock").is_empty()).await);
        let q = seen.lock().expect("lock")[0].clone();
        assert_eq!(q.get("crm").map(String::as_str), Some("acme"));
        assert_eq!(q.get("To").map(String::as_str), Some("1000"));
    }

    #[tokio::test]
    async fn not_fired_after_the_caller_hung_up() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let uri = serve(Router::new().route(
            "/hook",
            post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        ))
        .await;
        let flow = node(
            "play",
            json!({"id": "long.wav"}),
            json!({"_": hook(&uri, json!({}))}),
        );
        let sim = run(flow, caller_hangs_up_mid_media()).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(modules_run(&sim), ["play"]);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }
}

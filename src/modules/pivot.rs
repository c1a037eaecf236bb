//! `pivot`: asks a web application what to do next. callflowd sends the call's details to
//! `voice_url`; the reply is a Kazoo callflow node (JSON) that replaces the rest of the flow.
//!
//! HTTP: GET with the fields as query parameters, or POST as a form or JSON body, at most
//! `req_timeout_ms` (≤ 5 s). Fields: `Call-ID`, `Account-ID`, `Callflow-ID`, `From`, `To`,
//! `Caller-ID-Name`, `Caller-ID-Number`, `Direction`, `Request`, `Digits` (the `default` DTMF
//! collection) and `Language`. The reply must be JSON: a node `{"module","data","children"}` (or
//! `{"flow": node}`); it is validated like a stored callflow (registered modules, data schemas,
//! depth and size limits) before it runs (Kazoo `continue_with_flow`, not counted as a branch).
//! ESL: none itself. Children: `_` on timeout, HTTP error, non-JSON or invalid reply.

use super::collect_dtmf::collected;
use super::{CallflowModule, Next};
use crate::callflow::errors::FieldErrors;
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The `pivot` module.
pub struct Pivot;

/// `pivot` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Where to ask.
    pub voice_url: String,
    /// `get` or `post`.
    #[serde(default = "get")]
    pub method: String,
    /// `form` or `json` (POST bodies).
    #[serde(default = "form")]
    pub req_body_format: String,
    /// Request timeout (ms, ≤ 5000).
    #[serde(default = "five_s")]
    pub req_timeout_ms: u64,
    /// Log the request and reply.
    #[serde(default)]
    pub debug: bool,
}

fn get() -> String {
    "get".into()
}
fn form() -> String {
    "form".into()
}
fn five_s() -> u64 {
    5000
}

/// Largest reply accepted (a callflow document is limited to 1 MiB too).
const MAX_REPLY: usize = 1 << 20;

/// The request fields describing the call.
pub fn request_fields(call: &Call) -> Vec<(String, String)> {
    let mut fields = vec![
        ("Call-ID".to_string(), call.uuid.clone()),
        ("Account-ID".to_string(), call.account_id.clone()),
        ("Callflow-ID".to_string(), call.callflow_id.clone()),
        (
            "Request".to_string(),
            call.destination_number().unwrap_or_default().to_string(),
        ),
        (
            "To".to_string(),
            call.destination_number().unwrap_or_default().to_string(),
        ),
        (
            "From".to_string(),
            call.caller_id_number().unwrap_or_default().to_string(),
        ),
        (
            "Caller-ID-Number".to_string(),
            call.caller_id_number().unwrap_or_default().to_string(),
        ),
        (
            "Caller-ID-Name".to_string(),
            call.caller_id_name().unwrap_or_default().to_string(),
        ),
        (
            "Direction".to_string(),
            call.channel_header("Call-Direction")
                .unwrap_or("inbound")
                .to_string(),
        ),
    ];
    if let Some(digits) = collected(call, "default") {
        fields.push(("Digits".to_string(), digits.to_string()));
    }
    if let Some(language) = call.var("default_language") {
        fields.push(("Language".to_string(), language.to_string()));
    }
    fields
}

/// Turns a reply body into a validated node, or explains why not.
pub fn parse_reply(body: &[u8]) -> Result<Node, String> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| format!("reply is not JSON: {e}"))?;
    if let Some(flow) = value.get_mut("flow").map(Value::take) {
        value = flow;
    }
    let mut errors = FieldErrors::new();
    super::validate_flow(&mut value, "flow", &mut errors);
    if !errors.is_empty() {
        return Err(format!(
            "reply is not a valid callflow: {}",
            errors.to_json()
        ));
    }
    Node::from_value(&value).map_err(|e| e.to_string())
}

impl CallflowModule for Pivot {
    const NAME: &'static str = "pivot";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Fetch the rest of the callflow from a web application",
            "required": ["voice_url"],
            "properties": {
                "voice_url": {"type": "string", "pattern": "^https?://", "maxLength": 2048},
                "method": {"type": "string", "enum": ["get", "post", "GET", "POST"], "default": "get"},
                "req_format": {"type": "string", "enum": ["kazoo"], "default": "kazoo"},
                "req_body_format": {"type": "string", "enum": ["form", "json"], "default": "form"},
                "req_timeout_ms": {"type": "integer", "minimum": 100, "maximum": 5000, "default": 5000},
                "debug": {"type": "boolean", "default": false}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let fields = request_fields(call);
        let timeout = Duration::from_millis(data.req_timeout_ms.clamp(100, 5000));
        let client = call.ctx.http.clone();
        let request = if data.method.eq_ignore_ascii_case("post") {
            let builder = client.post(&data.voice_url);
            if data.req_body_format == "json" {
                let body: Map<String, Value> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                builder.json(&body)
            } else {
                builder.form(&fields)
            }
        } else {
            client.get(&data.voice_url).query(&fields)
        };
        let fetch = async move {
            let response = request
                .timeout(timeout)
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            if response
                .content_length()
                .is_some_and(|n| n as usize > MAX_REPLY)
            {
                return Err("reply too large".into());
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("reading reply: {e}"))?;
            if body.len() > MAX_REPLY {
                return Err("reply too large".into());
            }
            Ok(body)
        };
        // The timeout bounds the request, not `race`: metaflows run inside `race`, and
        // cancelling it in the middle of one would leave that metaflow half done.
        let bounded = async move {
            tokio::time::timeout(timeout + Duration::from_millis(100), fetch)
                .await
                .unwrap_or_else(|_| Err("timed out".to_string()))
        };
        let outcome = call.race(bounded).await?;
        let node = outcome.and_then(|body| {
            if data.debug {
                tracing::info!(url = %data.voice_url, reply = %String::from_utf8_lossy(&body), "pivot reply");
            }
            parse_reply(&body)
        });
        match node {
            Ok(node) if !node.is_empty() => Ok(Next::ContinueWithFlow(Box::new(node))),
            Ok(_) => Ok(Next::default_child()),
            Err(why) => {
                tracing::warn!(url = %data.voice_url, %why, "pivot failed; continuing to `_`");
                Ok(Next::default_child())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use axum::Router;
    use axum::extract::Query;
    use axum::http::StatusCode;
    use axum::routing::{get as get_route, post as post_route};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// Serves `router` on an ephemeral loopback port; returns the base URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}")
    }

    fn pivot(url: &str, extra: Value) -> Value {
        let mut data = json!({"voice_url": url});
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        node("pivot", data, json!({"_": marker("fallback", json!({}))}))
    }

    fn reply_flow() -> Value {
        json!({
            "module": "tts",
            "data": {"text": "from pivot"},
            "children": {"_": {"module": "set_variable", "data": {"variable": "marker", "value": "pivot-child"}}}
        })
    }

    #[test]
    fn reply_parsing() {
        let node = parse_reply(br#"{"module":"play","data":{"id":"tone_stream://%(100,0,440)"}}"#)
            .unwrap();
        assert_eq!(node.module, "play");
        assert_eq!(node.data["answer"], json!(true), "defaults are applied");
        let wrapped = parse_reply(br#"{"flow":{"module":"hangup","data":{}}}"#).unwrap();
        assert_eq!(wrapped.module, "hangup");
        assert!(parse_reply(b"<Response/>").is_err());
        assert!(parse_reply(br#"{"module":"nope","data":{}}"#).is_err());
        assert!(parse_reply(br#"{"module":"play","data":{}}"#).is_err());
    }

    #[tokio::test]
    async fn runs_the_returned_flow_instead_of_the_children() {
        let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
        let record = seen.clone();
        let url = serve(Router::new().route(
            "/pivot",
            get_route(move |Query(q): Query<HashMap<String, String>>| {
                let record = record.clone();
                async move {
                    record.lock().expect("lock").push(q);
                    axum::Json(reply_flow())
                }
            }),
        ))
        .await;
        let sim = run(pivot(&format!("{url}/pivot"), json!({})), script()).await;
        assert_eq!(
            apps(&sim),
            [
                "set playback_terminators=123456789*0#",
                "speak flite|slt|from pivot",
                "set marker=pivot-child"
            ]
        );
        assert_eq!(branches(&sim)[0], "continue with -> tts");
        assert!(completed(&sim), "{:?}", sim.report.end);
        let requests = seen.lock().expect("lock").clone();
        assert_eq!(requests.len(), 1);
        let q = &requests[0];
        assert_eq!(q.get("Call-ID"), Some(&sim.report.uuid));
        assert_eq!(q.get("Account-ID").map(String::as_str), Some(ACCOUNT));
        assert_eq!(
            q.get("Callflow-ID").map(String::as_str),
            Some("cf000000000000000000000000000001")
        );
        assert_eq!(q.get("To").map(String::as_str), Some("1000"));
        assert_eq!(q.get("From").map(String::as_str), Some("1001"));
        assert_eq!(
            q.get("Caller-ID-Name").map(String::as_str),
            Some("SIPp 1001")
        );
    }

    #[tokio::test]
    async fn posts_json_with_collected_digits() {
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let record = seen.clone();
        let url = serve(Router::new().route(
            "/pivot",
            post_route(move |axum::Json(body): axum::Json<Value>| {
                let record = record.clone();
                async move {
                    record.lock().expect("lock").push(body);
                    axum::Json(json!({"flow": reply_flow()}))
                }
            }),
        ))
        .await;
        let flow = node(
            "collect_dtmf",
            json!({"max_digits": 2, "timeout": 3000}),
            json!({"_": pivot(&format!("{url}/pivot"), json!({"method": "post", "req_body_format": "json"}))}),
        );
        let sim = run(flow, script().dtmf("42@300ms").expect("digits")).await;
        assert_eq!(markers(&sim), ["pivot-child"]);
        let body = seen
            .lock()
            .expect("lock")
            .first()
            .cloned()
            .expect("one request");
        assert_eq!(body["Digits"], json!("42"));
        assert_eq!(body["Call-ID"], json!(sim.report.uuid));
    }

    #[tokio::test]
    async fn http_error_takes_the_default_child() {
        let url = serve(Router::new().route(
            "/pivot",
            get_route(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        ))
        .await;
        let sim = run(pivot(&format!("{url}/pivot"), json!({})), script()).await;
        assert_eq!(apps(&sim), ["set marker=fallback"]);
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn timeout_takes_the_default_child() {
        let url = serve(Router::new().route(
            "/pivot",
            get_route(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                axum::Json(reply_flow())
            }),
        ))
        .await;
        let sim = run(
            pivot(&format!("{url}/pivot"), json!({"req_timeout_ms": 300})),
            script(),
        )
        .await;
        assert_eq!(apps(&sim), ["set marker=fallback"]);
        let last = sim
            .report
            .timeline
            .last()
            .map(|(at, _)| *at)
            .unwrap_or_default();
        assert!(
            last < Duration::from_secs(8),
            "did not wait for the server: {last:?}"
        );
    }

    #[tokio::test]
    async fn invalid_replies_take_the_default_child() {
        let url = serve(
            Router::new()
                .route(
                    "/twiml",
                    get_route(|| async { "<Response><Say>hi</Say></Response>" }),
                )
                .route(
                    "/unknown-module",
                    get_route(|| async { axum::Json(json!({"module": "nope", "data": {}})) }),
                )
                .route(
                    "/bad-data",
                    get_route(|| async { axum::Json(json!({"module": "play", "data": {}})) }),
                ),
        )
        .await;
        for path in ["twiml", "unknown-module", "bad-data"] {
            let sim = run(pivot(&format!("{url}/{path}"), json!({})), script()).await;
            assert_eq!(apps(&sim), ["set marker=fallback"], "{path}");
        }
    }

    #[tokio::test]
    async fn unreachable_server_takes_the_default_child() {
        // Bind then drop a listener: nothing accepts on that port.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let sim = run(pivot(&format!("http://{addr}/pivot"), json!({})), script()).await;
        assert_eq!(apps(&sim), ["set marker=fallback"]);
    }

    #[tokio::test]
    async fn caller_hangup_during_the_request_ends_the_flow() {
        let url = serve(Router::new().route(
            "/pivot",
            get_route(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                axum::Json(reply_flow())
            }),
        ))
        .await;
        let sim = run(
            pivot(&format!("{url}/pivot"), json!({})),
            script().hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert!(apps(&sim).is_empty());
    }
}

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
        let outcome = match tokio::time::timeout(
            timeout + Duration::from_millis(100),
            call.race(fetch),
        )
        .await
        {
            Ok(raced) => raced?,
            Err(_) => Err("timed out".to_string()),
        };
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
}

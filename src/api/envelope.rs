//! Kazoo envelopes and errors, in one place.
//!
//! Handlers never serialise envelopes themselves: they return a [`Reply`] or an [`ApiError`],
//! which travel as response extensions, and the [`envelope`] middleware (the outermost layer of
//! every route, the fallbacks and the panic handler) renders them with the request id, the
//! caller's token, the timestamp, version and node. Anything else that comes back with an error
//! status (an axum rejection, say) is rendered as an error envelope too, so *every* response is
//! JSON with `Content-Type: application/json` exactly (no charset).
//!
//! Success: `{"auth_token","status":"success","request_id","revision","data","timestamp",
//! "version","node"}` (+ `page_size`, `start_key`, `next_start_key` on lists).
//! Error: `{"auth_token","status":"error","error":"<code>","message","request_id","data",...}`.

use super::AppState;
use super::auth::{AuthContext, presented_token};
use crate::callflow::errors::FieldErrors;
use crate::documents::DocError;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The exact content type of every envelope.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// Header carrying the request id (Kazoo: `X-Request-ID`).
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every API error, each with one status code and Kazoo's `error`/`message`/`data` shape.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 400 `validation error` with per-field `data`.
    #[error("validation error")]
    Validation(FieldErrors),
    /// 400: the body is not JSON (or too deeply nested for the parser).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// 401 `invalid_credentials`: missing, invalid or expired token, or a failed login.
    #[error("invalid credentials")]
    Unauthorized,
    /// 403 `forbidden`: a valid token for another account.
    #[error("forbidden")]
    Forbidden(String),
    /// 404 `bad_identifier`: unknown or deleted id.
    #[error("bad identifier {0}")]
    NotFound(String),
    /// 404 for a path no route serves.
    #[error("no route for {0}")]
    NoRoute(String),
    /// 405 `invalid_method`.
    #[error("method {0} not allowed")]
    MethodNotAllowed(String),
    /// 409 `datastore_conflict` (stale `If-Match`, id taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 408 `request_timeout`: the request body did not arrive in time.
    #[error("request body timed out")]
    RequestTimeout,
    /// 413: body larger than the limit (bytes).
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// 415: a request body of a content type the route does not take.
    #[error("unsupported content type {0}")]
    UnsupportedMediaType(String),
    /// 429 `too_many_requests`: too many failed logins from this source; retry after this many
    /// seconds (also the `Retry-After` header).
    #[error("too many failed logins; retry in {0} s")]
    TooManyRequests(u64),
    /// 500: details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// Any other status (the safety net for responses no handler shaped).
    #[error("status {0}")]
    Status(StatusCode),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Status(status) => *status,
        }
    }

    /// Kazoo's `message` (a short code-like string) and `data`.
    pub fn message_and_data(&self) -> (String, Value) {
        match self {
            ApiError::Validation(errors) => ("validation error".into(), errors.to_json()),
            ApiError::InvalidJson(reason) => (
                "validation error".into(),
                json!({"json": {"invalid": {"message": reason, "target": "body"}}}),
            ),
            ApiError::Unauthorized => (
                "invalid_credentials".into(),
                json!({"message": "invalid credentials"}),
            ),
            ApiError::Forbidden(cause) => (
                "forbidden".into(),
                json!({"message": "forbidden", "cause": cause}),
            ),
            ApiError::NotFound(id) => (
                "bad_identifier".into(),
                json!({"message": "bad identifier", "cause": id}),
            ),
            ApiError::NoRoute(path) => (
                "not_found".into(),
                json!({"message": "not found", "cause": path}),
            ),
            ApiError::MethodNotAllowed(method) => (
                "invalid_method".into(),
                json!({"message": "invalid method", "cause": method}),
            ),
            ApiError::Conflict(cause) => (
                "datastore_conflict".into(),
                json!({"message": "conflicting documents", "cause": cause}),
            ),
            ApiError::RequestTimeout => (
                "request_timeout".into(),
                json!({"message": "the request body did not arrive in time"}),
            ),
            ApiError::TooManyRequests(retry_after) => (
                "too_many_requests".into(),
                json!({"message": "too many failed logins from this address", "retry_after": retry_after}),
            ),
            ApiError::TooLarge(limit) => (
                "request_entity_too_large".into(),
                json!({"message": format!("request body is larger than {limit} bytes"), "target": limit}),
            ),
            ApiError::UnsupportedMediaType(content_type) => (
                "unsupported_media_type".into(),
                json!({"message": "unsupported content type", "cause": content_type}),
            ),
            ApiError::Internal(_) => (
                "internal_server_error".into(),
                json!({"message": "internal server error"}),
            ),
            ApiError::Status(status) => {
                let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
                (reason.replace(' ', "_"), json!({"message": reason}))
            }
        }
    }
}

impl From<DocError> for ApiError {
    fn from(error: DocError) -> Self {
        match error {
            DocError::NotFound(id) => ApiError::NotFound(id),
            DocError::Invalid(errors) => ApiError::Validation(errors),
            DocError::Conflict(why) => ApiError::Conflict(why),
            DocError::Exists(id) => ApiError::Conflict(format!("document {id} already exists")),
            DocError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        if let ApiError::TooManyRequests(seconds) = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// A success reply, rendered into the envelope by the middleware.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    data: Value,
    revision: Option<String>,
    extra: Map<String, Value>,
    auth_token: Option<String>,
    headers: Vec<(HeaderName, String)>,
    raw: bool,
}

impl Reply {
    /// 200 with `data`.
    pub fn ok(data: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            data,
            revision: None,
            extra: Map::new(),
            auth_token: None,
            headers: Vec::new(),
            raw: false,
        }
    }

    /// 201 with `data`.
    pub fn created(data: Value) -> Self {
        Reply {
            status: StatusCode::CREATED,
            ..Reply::ok(data)
        }
    }

    /// The document revision: the envelope's `revision` and the `ETag` header.
    pub fn revision(mut self, revision: &str) -> Self {
        self.revision = Some(revision.to_string());
        self.headers.push((header::ETAG, format!("\"{revision}\"")));
        self
    }

    /// An extra top-level envelope key (`page_size`, `start_key`, `next_start_key`).
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// The envelope's `auth_token` (logins return the new token here).
    pub fn auth_token(mut self, token: String) -> Self {
        self.auth_token = Some(token);
        self
    }

    /// An extra response header (`Location`).
    pub fn header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Send `data` as the whole body, without an envelope (the OpenAPI document, which tools
    /// fetch as-is).
    pub fn raw(mut self) -> Self {
        self.raw = true;
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// Marks a response the middleware must pass through untouched (`/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct Passthrough;

/// The request id, available to handlers through [`Ctx`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Per-request context for handlers: request id, auth, `If-Match`, query pairs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// This request's id (also `pvt_request_id` of what it writes).
    pub request_id: String,
    /// Set on authenticated routes.
    pub auth: Option<AuthContext>,
    /// The `If-Match` header, if any.
    pub if_match: Option<String>,
    /// Percent-decoded query pairs, in order.
    pub query: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx {
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            auth: parts.extensions.get::<AuthContext>().cloned(),
            if_match: parts
                .headers
                .get(header::IF_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            query: parse_query(parts.uri.query().unwrap_or("")),
        })
    }
}

/// Splits and percent-decodes a query string (`+` is a space, as in forms).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// The `data` of a `{"data":{...}}` request body. An empty body counts as `{}`; extra envelope
/// keys (`verb`, `accept_charges`, `auth_token`) are ignored. Bodies over the configured limit
/// give 413 before being buffered whole; bad or too deeply nested JSON gives 400.
#[derive(Debug, Clone)]
pub struct RequestData(pub Value);

impl FromRequest<AppState> for RequestData {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), req_limit(state)).await?;
        parse_envelope(&bytes).map(RequestData)
    }
}

fn req_limit(state: &AppState) -> usize {
    state.settings.max_body_bytes
}

/// Reads at most `limit` bytes of a body: 413 beyond, 408 when the body's deadline passes
/// (see [`super::server::DeadlineBody`]).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::TooLarge(limit))
        }
        Err(error) if super::server::is_body_timeout(&*error) => Err(ApiError::RequestTimeout),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
            while let Some(current) = source {
                if let Some(api_error) = current.downcast_ref::<ApiError>() {
                    return Err(api_error.clone());
                }
                source = current.source();
            }
            Err(ApiError::InvalidJson(format!(
                "could not read the body: {error}"
            )))
        }
    }
}

/// A body whose reading fails with `error` (for a middleware that already consumed the real
/// body and failed): [`read_body`] hands the same error to the handler.
pub fn failed_body(error: ApiError) -> Body {
    Body::from_stream(futures_util::stream::once(async move {
        Err::<Bytes, ApiError>(error)
    }))
}

/// Parses a request body into its `data` (see [`RequestData`]).
pub fn parse_envelope(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    // Deeper than MAX_JSON_DEPTH is refused by a linear scan before parsing, so a 100,000-level
    // body is a 400, never a stack overflow.
    let value: Value =
        crate::util::parse_json(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    match value {
        Value::Object(mut envelope) => Ok(envelope
            .remove("data")
            .unwrap_or_else(|| Value::Object(Map::new()))),
        _ => Err(ApiError::InvalidJson(
            "the request body must be a JSON object".into(),
        )),
    }
}

fn request_id_from(headers: &HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| crate::util::random_hex(16), str::to_string)
}

/// The outermost middleware: request id, tracing span, metrics, and envelope rendering.
pub async fn envelope(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id_from(req.headers());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let token = presented_token(req.headers(), req.uri().query());
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);

    let response = next.run(req).instrument(span.clone()).await;
    let mut response = render(response, &request_id, token, &state);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(
                status,
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request failed"
            );
        } else {
            tracing::info!(
                status,
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
        }
    });
    crate::telemetry::record_request(&method, &route, status, elapsed);
    response
}

fn render(
    response: Response,
    request_id: &str,
    token: Option<String>,
    state: &AppState,
) -> Response {
    if response.extensions().get::<Passthrough>().is_some() {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let reply = parts.extensions.remove::<Arc<Reply>>();
    let error = parts.extensions.remove::<Arc<ApiError>>();
    let mut body = Map::new();
    let status;
    if let Some(reply) = reply {
        status = reply.status;
        for (name, value) in &reply.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                parts.headers.insert(name.clone(), value);
            }
        }
        if reply.raw {
            return json_response(parts, status, &reply.data);
        }
        let token = reply.auth_token.clone().or(token).unwrap_or_default();
        let revision = reply
            .revision
            .clone()
            .unwrap_or_else(|| content_revision(&reply.data));
        body.insert("auth_token".into(), Value::String(token));
        body.insert("status".into(), Value::String("success".into()));
        body.insert("request_id".into(), Value::String(request_id.to_string()));
        body.insert("revision".into(), Value::String(revision));
        body.insert("data".into(), reply.data.clone());
        for (k, v) in &reply.extra {
            body.insert(k.clone(), v.clone());
        }
    } else {
        let error = match error {
            Some(error) => (*error).clone(),
            None if parts.status.is_client_error() || parts.status.is_server_error() => {
                ApiError::Status(parts.status)
            }
            None => {
                // A bare success nobody shaped: still answer with an envelope.
                return json_response(
                    parts,
                    StatusCode::OK,
                    &json!({"status": "success", "request_id": request_id}),
                );
            }
        };
        status = error.status();
        if let ApiError::Internal(detail) = &error {
            tracing::error!(%detail, "internal error");
        }
        let (message, data) = error.message_and_data();
        body.insert(
            "auth_token".into(),
            Value::String(token.unwrap_or_default()),
        );
        body.insert("status".into(), Value::String("error".into()));
        body.insert("error".into(), Value::String(status.as_u16().to_string()));
        body.insert("message".into(), Value::String(message));
        body.insert("request_id".into(), Value::String(request_id.to_string()));
        body.insert("data".into(), data);
    }
    body.insert(
        "timestamp".into(),
        Value::String(crate::util::iso8601(crate::util::unix_now())),
    );
    body.insert(
        "version".into(),
        Value::String(env!("CARGO_PKG_VERSION").into()),
    );
    body.insert("node".into(), Value::String(state.settings.node.clone()));
    json_response(parts, status, &Value::Object(body))
}

fn json_response(
    mut parts: axum::http::response::Parts,
    status: StatusCode,
    body: &Value,
) -> Response {
    parts.status = status;
    parts.headers.insert(header::CONTENT_TYPE, JSON);
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::from_parts(parts, Body::from(bytes))
}

/// A list or computed reply has no stored revision: Crossbar sends an md5 of the content.
fn content_revision(data: &Value) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(serde_json::to_vec(data).unwrap_or_default()))
}

/// The panic handler for `CatchPanicLayer`: a 500 envelope (the middleware adds the request id).
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string());
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}

/// Fallback for paths no route serves.
pub async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(req.uri().path().to_string())
}

/// Fallback for known paths with an unsupported verb.
pub async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(req.method().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(
            parse_query("a=1&filter_x=b+c&k=%2Fx&flag&="),
            vec![
                ("a".to_string(), "1".to_string()),
                ("filter_x".to_string(), "b c".to_string()),
                ("k".to_string(), "/x".to_string()),
                ("flag".to_string(), String::new()),
                (String::new(), String::new()),
            ]
        );
    }

    #[test]
    fn envelopes_parse() {
        assert_eq!(parse_envelope(b"").unwrap(), json!({}));
        assert_eq!(
            parse_envelope(br#"{"data":{"a":1},"verb":"PUT"}"#).unwrap(),
            json!({"a":1})
        );
        assert!(matches!(
            parse_envelope(b"[1]"),
            Err(ApiError::InvalidJson(_))
        ));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse_envelope(deep.as_bytes()),
            Err(ApiError::InvalidJson(_))
        ));
    }
}

//! The Kazoo-compatible REST API (axum).
//!
//! - [`routes`]: the route table; [`router`] builds the axum router from it and [`openapi`]
//!   documents the same table.
//! - [`envelope`]: Kazoo envelopes and errors, rendered in one middleware.
//! - [`auth`]: logins and the token check.
//! - [`documents`]: the generic collection routes (callflows and every later collection).
//! - [`accounts`], [`schemas`]: the remaining routes.
//! - [`server`]: the accept loop under it all (timeouts, limits, TLS).

pub mod accounts;
pub mod auth;
pub mod directory;
pub mod documents;
pub mod envelope;
pub mod media;
pub mod metaflows;
pub mod openapi;
pub mod routes;
pub mod schemas;
pub mod server;
pub mod simulate;

use crate::auth::token::TokenSigner;
use crate::store::{Store, StoreError};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{from_fn_with_state, map_request_with_state};
use axum::response::{IntoResponse, Response};
use envelope::Passthrough;
use metrics_exporter_prometheus::PrometheusHandle;
use routes::{RouteSpec, Verb};
use serde_json::json;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

/// API settings (a slice of the service configuration).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Token lifetime.
    pub token_lifetime: Duration,
    /// The envelope's `node`.
    pub node: String,
    /// Request body limit (413 beyond).
    pub max_body_bytes: usize,
    /// Engine settings for `POST .../simulate` dry runs.
    pub engine: crate::engine::EngineConfig,
    /// Data directory (media files live under `<data_dir>/media/`).
    pub data_dir: std::path::PathBuf,
    /// Largest media upload (413 beyond).
    pub media_max_bytes: usize,
    /// The FreeSWITCH directory endpoint's settings.
    pub directory: directory::DirectorySettings,
    /// Failed logins allowed per source address per [`ApiSettings::login_failure_window`]
    /// (0: no limit).
    pub login_max_failures: u32,
    /// The window of [`ApiSettings::login_max_failures`].
    pub login_failure_window: Duration,
}

impl From<&crate::config::Config> for ApiSettings {
    fn from(config: &crate::config::Config) -> Self {
        ApiSettings {
            token_lifetime: config.token_lifetime,
            node: config.node.clone(),
            max_body_bytes: config.max_body_bytes,
            engine: config.engine(),
            data_dir: config.data_dir.clone(),
            media_max_bytes: config.media_max_bytes,
            directory: directory::DirectorySettings::from(config),
            login_max_failures: config.login_max_failures,
            login_failure_window: config.login_failure_window,
        }
    }
}

/// What every handler shares.
pub struct AppInner {
    /// The document store.
    pub store: Arc<dyn Store>,
    /// Issues and checks tokens (key from the store).
    pub signer: TokenSigner,
    /// Settings.
    pub settings: ApiSettings,
    /// Failed-login rate limit per source address.
    pub logins: auth::LoginAttempts,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
}

/// Cheap-to-clone handle on [`AppInner`] (axum state).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Builds the state; reads the token signing key from the store.
    pub fn new(store: Arc<dyn Store>, settings: ApiSettings) -> Result<Self, StoreError> {
        let signer = TokenSigner::new(store.signing_key()?);
        let logins = auth::LoginAttempts::new(
            settings.login_max_failures,
            settings.login_failure_window,
            auth::LOGIN_SOURCES_TRACKED,
        );
        Ok(AppState(Arc::new(AppInner {
            store,
            signer,
            settings,
            logins,
            prometheus: crate::telemetry::prometheus(),
        })))
    }
}

/// The login routes (no token needed).
fn auth_routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec::new(Verb::Put, "/v2/api_auth", "api_auth", auth::api_auth)
            .summary("Exchange an API key for a token")
            .tag("auth")
            .request(json!({"type": "object", "required": ["api_key"], "properties": {
                "api_key": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}}))
            .response(login_schema())
            .status(201)
            .error(401, "Unknown or malformed API key")
            .error(429, "Too many failed logins from this address (see Retry-After)"),
        RouteSpec::new(Verb::Put, "/v2/user_auth", "user_auth", auth::user_auth)
            .summary("Exchange md5(user:pass) (or sha1 with method=sha) and an account name or realm for a token")
            .tag("auth")
            .request(json!({"type": "object", "required": ["credentials"], "properties": {
                "credentials": {"type": "string", "minLength": 1}, "account_name": {"type": "string"},
                "account_realm": {"type": "string"}, "phone_number": {"type": "string"},
                "method": {"type": "string", "enum": ["md5", "sha"]}},
                "anyOf": [{"required": ["account_name"]}, {"required": ["account_realm"]},
                          {"required": ["phone_number"]}]}))
            .response(login_schema())
            .status(201)
            .error(401, "Unknown account or wrong credentials")
            .error(429, "Too many failed logins from this address (see Retry-After)"),
    ]
}

fn login_schema() -> serde_json::Value {
    json!({"type": "object", "required": ["account_id"], "properties": {
        "account_id": {"type": "string"}, "owner_id": {"type": "string"}, "account_name": {"type": "string"},
        "reseller_id": {"type": "string"}, "is_reseller": {"type": "boolean"},
        "language": {"type": "string"}, "apps": {"type": "array"}}})
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.prometheus.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response.extensions_mut().insert(Passthrough);
    response
}

fn metrics_routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec::new(Verb::Get, "/metrics", "metrics", metrics)
            .summary("Prometheus metrics")
            .tag("meta")
            .raw(&["text/plain"])
            .response(json!({"type": "string"})),
    ]
}

/// Crossbar lets a client tunnel a verb through POST: `?verb=PUT` or `{"verb":"PATCH",...}`.
/// Runs before routing. The body is only peeked at when its declared length is within the limit
/// (anything bigger is left for the handler to refuse with 413).
async fn tunnel_verb(State(state): State<AppState>, req: Request) -> Request {
    if req.method() != Method::POST {
        return req;
    }
    let from_query = req.uri().query().and_then(|q| {
        envelope::parse_query(q)
            .into_iter()
            .find(|(k, _)| k == "verb")
            .map(|(_, v)| v)
    });
    let (mut parts, body) = req.into_parts();
    let mut body = body;
    let mut verb = from_query;
    if verb.is_none() {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > 0 && n <= state.settings.max_body_bytes) {
            match envelope::read_body(body, state.settings.max_body_bytes).await {
                Ok(bytes) => {
                    verb = crate::util::parse_json::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v.get("verb").and_then(|v| v.as_str()).map(str::to_string));
                    body = Body::from(bytes);
                }
                // The handler must see the same failure (a timeout stays a timeout), never an
                // empty body it would take for `{}`.
                Err(error) => body = envelope::failed_body(error),
            }
        }
    }
    if let Some(method) =
        verb.and_then(|v| Method::from_bytes(v.to_ascii_uppercase().as_bytes()).ok())
    {
        if [Method::GET, Method::PUT, Method::PATCH, Method::DELETE].contains(&method) {
            parts.method = method;
        }
    }
    Request::from_parts(parts, body)
}

/// The complete router for `state`: every route of the table (auth layered where the table
/// says), the 404/405 fallbacks, panic catching, and the envelope middleware outermost.
pub fn router(state: AppState) -> Router {
    router_from(state, routes::table())
}

fn router_from(state: AppState, table: Vec<RouteSpec>) -> Router {
    let mut inner: Router<AppState> = Router::new();
    for spec in table {
        let mut handler = spec.handler;
        if spec.auth {
            handler = handler.route_layer(from_fn_with_state(state.clone(), auth::require_auth));
        }
        inner = inner.route(&spec.path, handler);
    }
    let inner = inner
        .fallback(envelope::no_route)
        .method_not_allowed_fallback(envelope::method_not_allowed)
        .layer(CatchPanicLayer::custom(envelope::panic_response))
        .layer(from_fn_with_state(state.clone(), envelope::envelope))
        .with_state(state.clone());
    // An outer router whose only job is verb tunnelling, which must happen before routing.
    Router::new()
        .fallback_service(inner)
        .layer(map_request_with_state(state, tunnel_verb))
}

/// Serves the API on `listener` with `options` (timeouts, limits, TLS: see [`server`]) until
/// `shutdown` resolves, then finishes requests in flight. Handlers get the peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    options: server::ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router(state), options, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn panics() -> envelope::Reply {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panic_is_a_500_envelope_with_the_request_id() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let settings = ApiSettings {
            token_lifetime: Duration::from_secs(60),
            node: "test".into(),
            max_body_bytes: 1024,
            engine: crate::engine::EngineConfig::default(),
            data_dir: dir.path().to_path_buf(),
            media_max_bytes: 1024,
            directory: directory::DirectorySettings::default(),
            login_max_failures: 10,
            login_failure_window: Duration::from_secs(60),
        };
        let state = AppState::new(store, settings).unwrap();
        let mut table = routes::table();
        table.push(RouteSpec::new(Verb::Get, "/v2/panic", "panic", panics));
        let response = router_from(state, table)
            .oneshot(
                Request::builder()
                    .uri("/v2/panic")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(!request_id.is_empty());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], "error");
        assert_eq!(json["error"], "500");
        assert_eq!(json["request_id"], request_id.as_str());
        assert!(
            !body.windows(4).any(|w| w == b"boom"),
            "panic details are not sent"
        );
    }
}

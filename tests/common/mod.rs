//! Shared helpers for black-box tests: start the real service (HTTP API + ESL listener) on
//! ephemeral ports with a temporary data directory, log in, and talk HTTP.
//!
//! ```ignore
//! mod common;
//! let server = common::TestServer::start().await;
//! let created = server.put(&server.callflows(), common::callflow(&["1000"])).await;
//! assert_eq!(created.status, 201);
//! // ESL tests: connect a fake switch to `server.esl_addr()`.
//! server.shutdown().await;
//! ```
#![allow(dead_code)]

pub mod engine;
pub mod process;
pub mod xml;

use bytes::Bytes;
use callflowd::config::Config;
use callflowd::service::{self, RunningService};
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A reply, with the body parsed as JSON when it is JSON (else `Value::Null`).
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// Parsed body.
    pub json: Value,
}

impl Resp {
    /// The envelope's `data`.
    pub fn data(&self) -> &Value {
        &self.json["data"]
    }

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// An HTTP/1 client without TLS.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request. `headers` are added as given; `body` is sent as is.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("valid method"))
        .uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("valid request");
    let response = client()
        .request(request)
        .await
        .expect("HTTP request failed");
    read_response(response).await
}

/// Reads a whole response into a [`Resp`] (a body that is not JSON leaves `json` null).
pub async fn read_response(response: hyper::Response<hyper::body::Incoming>) -> Resp {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        json,
    }
}

/// Exchanges an API key for a token.
pub async fn api_auth(base: &str, api_key: &str) -> String {
    let resp = send(
        "PUT",
        &format!("{base}/v2/api_auth"),
        &[("content-type", "application/json")],
        Some(
            json!({"data": {"api_key": api_key}})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(resp.status, 201, "api_auth failed: {}", resp.json);
    resp.json["auth_token"]
        .as_str()
        .expect("auth_token")
        .to_string()
}

/// A running service plus the first account's credentials and a token.
pub struct TestServer {
    /// The service (store, engine context, addresses).
    pub service: RunningService,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The first account's id.
    pub account_id: String,
    /// Its API key.
    pub api_key: String,
    /// A valid token for it.
    pub token: String,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts with the default test configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts after letting `tweak` adjust the configuration (ports are ephemeral, the data
    /// directory temporary).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::ephemeral(dir.path().join("data"));
        config.log_level = "warn".into();
        tweak(&mut config);
        callflowd::telemetry::init_logging(config.log_format, &config.log_level);
        let service = service::start(config).await.expect("service starts");
        let boot = service
            .bootstrap
            .clone()
            .expect("first start creates an account");
        let base = service.api_url();
        let token = api_auth(&base, &boot.api_key).await;
        TestServer {
            base,
            account_id: boot.account_id,
            api_key: boot.api_key,
            token,
            service,
            dir,
        }
    }

    /// The ESL listener's address (for fake-switch tests).
    pub fn esl_addr(&self) -> SocketAddr {
        self.service.esl_addr
    }

    /// `/v2/accounts/{account}/callflows`.
    pub fn callflows(&self) -> String {
        format!("/v2/accounts/{}/callflows", self.account_id)
    }

    /// `/v2/accounts/{account}/callflows/{id}`.
    pub fn callflow_path(&self, id: &str) -> String {
        format!("{}/{id}", self.callflows())
    }

    /// An authenticated request with a JSON body (or none).
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.request_with(method, path, &[], body).await
    }

    /// An authenticated request with extra headers.
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut all = vec![
            ("x-auth-token", self.token.as_str()),
            ("content-type", "application/json"),
        ];
        all.extend_from_slice(headers);
        send(
            method,
            &format!("{}{path}", self.base),
            &all,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None).await
    }

    /// PUT `{"data": data}`.
    pub async fn put(&self, path: &str, data: Value) -> Resp {
        self.request("PUT", path, Some(json!({ "data": data })))
            .await
    }

    /// POST `{"data": data}`.
    pub async fn post(&self, path: &str, data: Value) -> Resp {
        self.request("POST", path, Some(json!({ "data": data })))
            .await
    }

    /// PATCH `{"data": data}`.
    pub async fn patch(&self, path: &str, data: Value) -> Resp {
        self.request("PATCH", path, Some(json!({ "data": data })))
            .await
    }

    /// DELETE without a body.
    pub async fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None).await
    }

    /// Creates a callflow and returns its id (asserting 201).
    pub async fn create(&self, doc: Value) -> String {
        let resp = self.put(&self.callflows(), doc).await;
        assert_eq!(resp.status, 201, "create failed: {}", resp.json);
        resp.data()["id"].as_str().expect("id").to_string()
    }

    /// The temporary directory (data lives in `./data` under it).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the service (flushes the store).
    pub async fn shutdown(self) {
        self.service.shutdown().await.expect("clean shutdown");
    }
}

/// A minimal valid callflow: answer -> play -> hangup on `numbers`.
pub fn callflow(numbers: &[&str]) -> Value {
    json!({
        "name": format!("cf {}", numbers.first().unwrap_or(&"")),
        "numbers": numbers,
        "flow": {
            "module": "answer", "data": {},
            "children": {"_": {
                "module": "play", "data": {"id": "tone_stream://%(200,0,500)"},
                "children": {"_": {"module": "hangup", "data": {}}}
            }}
        }
    })
}

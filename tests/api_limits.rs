//! Black-box tests of the API server's protections against slow and oversized clients (request
//! head timeout, body deadline, head size, connection cap) and of HTTPS with a certificate.
//!
//! The TLS tests use the self-signed pair in `tests/fixtures/tls/` (localhost and 127.0.0.1,
//! valid 2020-2120; see the README there).

mod common;

use callflowd::service;
use common::TestServer;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes: then `None`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// The JSON body of a raw HTTP/1.1 response (`Content-Length` framed).
fn json_body(response: &[u8]) -> Value {
    let text = String::from_utf8_lossy(response);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_client_that_stalls_in_its_request_head_is_disconnected() {
    let server =
        TestServer::start_with(|config| config.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(server.service.api_addr)
        .await
        .expect("connect");
    let started = Instant::now();
    stream
        .write_all(b"GET /v2/schemas HTTP/1.1\r\nHost: callflowd\r\nX-Slow: ")
        .await
        .expect("write");
    let received = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the server closes a stalled connection");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(6),
        "closed after {elapsed:?}"
    );
    assert!(
        received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // An idle keep-alive connection is closed after the same time; a connection that never
    // sends anything too.
    let mut idle = TcpStream::connect(server.service.api_addr)
        .await
        .expect("connect");
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(6))
            .await
            .is_some()
    );

    // Prompt clients are not affected.
    let resp = common::send("GET", &format!("{}/v2/schemas", server.base), &[], None).await;
    assert_eq!(resp.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stalls_in_its_body_gets_408_and_is_disconnected() {
    let server =
        TestServer::start_with(|config| config.body_timeout = Duration::from_secs(1)).await;
    let metaflows = format!("/v2/accounts/{}/metaflows", server.account_id);
    let before = server.get(&metaflows).await;
    assert_eq!(before.status, 200);

    for (method, path, token) in [
        ("PUT", "/v2/api_auth".to_string(), false),
        // POST bodies are read early by the verb tunnel: the timeout must survive that, and
        // the handler must not take the cut body for an empty one.
        ("POST", metaflows.clone(), true),
        (
            "PUT",
            format!("{}/callflows", metaflows.trim_end_matches("/metaflows")),
            true,
        ),
    ] {
        let mut stream = TcpStream::connect(server.service.api_addr)
            .await
            .expect("connect");
        let auth = if token {
            format!("X-Auth-Token: {}\r\n", server.token)
        } else {
            String::new()
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: callflowd\r\nContent-Type: application/json\r\n{auth}Content-Length: 200\r\n\r\n{{\"data\":{{"
        );
        let started = Instant::now();
        stream.write_all(head.as_bytes()).await.expect("write");
        let received = read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .expect("the server closes the connection");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(6),
            "{method} {path}: answered after {elapsed:?}"
        );
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 408"), "{method} {path}: {text}");
        let body = json_body(&received);
        assert_eq!(body["error"], "408", "{text}");
        assert_eq!(body["message"], "request_timeout");
    }
    let after = server.get(&metaflows).await;
    assert_eq!(after.data(), before.data(), "nothing was written");
    let list = server.get(&server.callflows()).await;
    assert_eq!(list.data(), &json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let server = TestServer::start().await;
    let url = format!("{}/v2/schemas", server.base);
    // Within the 64 KiB default: served.
    let big = "a".repeat(32 * 1024);
    let resp = common::send("GET", &url, &[("x-padding", &big)], None).await;
    assert_eq!(resp.status, 200);

    // Over it: 431 (hyper's own, not an envelope) and the connection is closed.
    let mut stream = TcpStream::connect(server.service.api_addr)
        .await
        .expect("connect");
    let huge = "a".repeat(70 * 1024);
    let request =
        format!("GET /v2/schemas HTTP/1.1\r\nHost: callflowd\r\nX-Padding: {huge}\r\n\r\n");
    // The server may close before it has read everything; a failed write is fine.
    let _ = stream.write_all(request.as_bytes()).await;
    let received = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("closed");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );

    // Many small headers adding up to more than the limit are refused the same way.
    let mut stream = TcpStream::connect(server.service.api_addr)
        .await
        .expect("connect");
    let mut request = String::from("GET /v2/schemas HTTP/1.1\r\nHost: callflowd\r\n");
    for i in 0..90 {
        request.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(1000)));
    }
    request.push_str("\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let received = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("closed");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 2;
        config.header_read_timeout = Duration::from_secs(5);
    })
    .await;
    let addr = server.service.api_addr;
    // Two idle connections take both slots (the login in `start` has closed its own by now,
    // or closes it within the client's idle time; wait until the server is saturated).
    let first = TcpStream::connect(addr).await.expect("connect");
    let second = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut third = TcpStream::connect(addr)
        .await
        .expect("the kernel queues it");
    third
        .write_all(b"GET /v2/schemas HTTP/1.1\r\nHost: callflowd\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(early.is_err(), "not served while both slots are taken");

    drop(first);
    drop(second);
    let received = read_until_closed(&mut third, Duration::from_secs(5))
        .await
        .expect("served once a slot is free");
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    server.shutdown().await;
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

#[tokio::test]
async fn with_a_certificate_the_api_speaks_https_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = callflowd::config::Config::ephemeral(dir.path().join("data"));
    config.log_level = "warn".into();
    config.tls_cert = Some(fixture("cert.pem"));
    config.tls_key = Some(fixture("key.pem"));
    config.header_read_timeout = Duration::from_secs(2);
    let running = service::start(config).await.expect("starts with TLS");
    let boot = running.bootstrap.clone().expect("first start");
    let base = running.api_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    let pem = std::fs::read(fixture("cert.pem")).expect("cert");
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .build()
        .expect("client");
    let resp = client
        .put(format!("{base}/v2/api_auth"))
        .json(&json!({"data": {"api_key": boot.api_key}}))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.expect("json");
    let token = body["auth_token"].as_str().expect("token").to_string();
    let resp = client
        .get(format!("{base}/v2/accounts/{}", boot.account_id))
        .header("x-auth-token", &token)
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);

    // A client that does not trust the certificate refuses the server.
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .build()
        .expect("client");
    assert!(
        untrusting
            .get(format!("{base}/v2/schemas"))
            .send()
            .await
            .is_err()
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = base.replacen("https://", "http://", 1);
    assert!(
        client
            .get(format!("{plain}/v2/schemas"))
            .send()
            .await
            .is_err()
    );
    let mut stream = TcpStream::connect(running.api_addr).await.expect("connect");
    stream
        .write_all(b"GET /v2/schemas HTTP/1.1\r\nHost: callflowd\r\n\r\n")
        .await
        .expect("write");
    let received = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("closed");
    assert!(
        !received.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // A TCP client that never starts the handshake is dropped after the head timeout.
    let mut silent = TcpStream::connect(running.api_addr).await.expect("connect");
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(8))
            .await
            .is_some()
    );
    running.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_unusable_certificate_stops_the_start_without_showing_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_text = std::fs::read_to_string(fixture("key.pem")).expect("key");
    let secret_line = key_text.lines().nth(1).expect("a base64 line").to_string();
    for (cert, key) in [
        (fixture("missing.pem"), fixture("key.pem")),
        (fixture("cert.pem"), fixture("missing.pem")),
        // Swapped: the key file holds no certificate, the cert file no key.
        (fixture("key.pem"), fixture("cert.pem")),
    ] {
        let mut config = callflowd::config::Config::ephemeral(dir.path().join("data"));
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key.clone());
        let error = match service::start(config).await {
            Ok(_) => panic!("{cert:?} + {key:?} must not start"),
            Err(error) => error.to_string(),
        };
        assert!(error.starts_with("TLS: "), "{error}");
        assert!(!error.contains(&secret_line), "{error}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the certificate is checked"
    );
}

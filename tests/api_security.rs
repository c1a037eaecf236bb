//! Black-box security tests of the API: every route of the route table needs a token except the
//! intended public ones; another account's token gets 403 on every account route and changes
//! nothing; failed logins are rate-limited per source address; the defaults bind to loopback;
//! the ESL listener drops peers outside its allow-list.
//!
//! (Token expiry: `api_auth.rs`, `expired_tokens_are_401`. TLS, timeouts and limits:
//! `api_limits.rs`. Secrets in logs: `secrets_in_logs.rs`.)

mod common;

use bytes::Bytes;
use callflowd::api::routes::{self, Verb};
use callflowd::auth::secrets::{md5_credentials, new_api_key};
use callflowd::config::Config;
use callflowd::store::Store;
use common::{Resp, TestServer, send};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SOME_ID: &str = "0123456789abcdef0123456789abcdef";

/// The routes that need no token, and why:
/// - `api_auth`, `user_auth`: they are how a token is obtained;
/// - `/metrics`: Prometheus scrapes without credentials (as Kazoo's); it holds only counters
///   by route template, method and status (no ids, no secrets: checked below);
/// - `/v2/openapi.json`, `/v2/schemas`, `/v2/schemas/{name}`: public documentation, the same
///   for every account (Crossbar serves schemas without a token too);
/// - `/directory`: FreeSWITCH's mod_xml_curl, protected by its own basic-auth login and peer
///   allow-list, and off until configured.
const PUBLIC: &[(&str, &str)] = &[
    ("put", "/v2/api_auth"),
    ("put", "/v2/user_auth"),
    ("get", "/metrics"),
    ("get", "/v2/openapi.json"),
    ("get", "/v2/schemas"),
    ("get", "/v2/schemas/{name}"),
    ("post", "/directory"),
    ("get", "/directory"),
];

const DIRECTORY_LOGIN: (&str, &str) = ("freeswitch", "directory-secret-7");

fn assert_envelope_error(resp: &Resp, status: u16, what: &str) {
    assert_eq!(resp.status, status, "{what}: {}", resp.json);
    assert_eq!(resp.header("content-type"), "application/json", "{what}");
    assert_eq!(resp.json["status"], "error", "{what}");
    assert_eq!(
        resp.json["error"],
        Value::String(status.to_string()),
        "{what}"
    );
    assert!(resp.json["request_id"].is_string(), "{what}");
}

/// Another account with its own API key and token.
async fn other_account(server: &TestServer, name: &str) -> (String, String) {
    let store = server.service.store.clone();
    let account = store
        .create_account(name, Some(&format!("{name}.test")))
        .await
        .expect("create account");
    let key = new_api_key();
    store
        .add_api_key(&account.id, key.hash)
        .await
        .expect("add key");
    let token = common::api_auth(&server.base, &key.key).await;
    (account.id, token)
}

/// `path` with its parameters filled in: `{account_id}` with `account`, `{id}` with `id`.
fn concrete(path: &str, account: &str, id: &str) -> String {
    let filled = path.replace("{account_id}", account).replace("{id}", id);
    assert!(
        !filled.contains('{'),
        "{path}: a path parameter this test does not know; teach it"
    );
    filled
}

fn method(verb: Verb) -> &'static str {
    match verb {
        Verb::Get => "GET",
        Verb::Put => "PUT",
        Verb::Post => "POST",
        Verb::Patch => "PATCH",
        Verb::Delete => "DELETE",
    }
}

#[tokio::test]
async fn every_route_needs_a_token_except_the_intended_public_ones() {
    let server = TestServer::start_with(|config| {
        config.directory_username = Some(DIRECTORY_LOGIN.0.into());
        config.directory_password = Some(DIRECTORY_LOGIN.1.into());
    })
    .await;
    let (_other_id, other_token) = other_account(&server, "intruder").await;
    let table = routes::table();
    assert!(table.len() > 60, "the table lists every route");

    let public: BTreeSet<(String, String)> = table
        .iter()
        .filter(|r| !r.auth)
        .map(|r| (r.verb.openapi_key().to_string(), r.path.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = PUBLIC
        .iter()
        .map(|(v, p)| (v.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        public, expected,
        "routes without a token are exactly the intended ones"
    );

    let mut covered = 0;
    for route in table.iter().filter(|r| r.auth) {
        assert!(
            route.path.contains("{account_id}"),
            "{}: every authenticated route is account-scoped",
            route.path
        );
        let url = format!(
            "{}{}",
            server.base,
            concrete(&route.path, &server.account_id, SOME_ID)
        );
        let content_type = route
            .raw_request
            .and_then(|types| types.first().copied())
            .unwrap_or("application/json");
        let body = || Some(br#"{"data":{"name":"probe"}}"#.to_vec());
        let what = format!("{} {}", method(route.verb), route.path);

        let resp = send(
            method(route.verb),
            &url,
            &[("content-type", content_type)],
            body(),
        )
        .await;
        assert_envelope_error(&resp, 401, &what);
        assert_eq!(resp.json["message"], "invalid_credentials", "{what}");

        let resp = send(
            method(route.verb),
            &url,
            &[("content-type", content_type), ("x-auth-token", "garbage")],
            body(),
        )
        .await;
        assert_envelope_error(&resp, 401, &what);

        let resp = send(
            method(route.verb),
            &url,
            &[
                ("content-type", content_type),
                ("x-auth-token", &other_token),
            ],
            body(),
        )
        .await;
        assert_envelope_error(&resp, 403, &what);
        assert_eq!(resp.json["message"], "forbidden", "{what}");

        // The same through Crossbar's verb tunnel (POST ?verb=...).
        if route.verb != Verb::Post && route.verb != Verb::Get {
            let tunnelled = format!("{url}?verb={}", method(route.verb));
            let resp = send(
                "POST",
                &tunnelled,
                &[("content-type", content_type)],
                body(),
            )
            .await;
            assert_envelope_error(&resp, 401, &format!("tunnelled {what}"));
        }
        covered += 1;
    }
    assert_eq!(covered, table.iter().filter(|r| r.auth).count());
    assert!(covered > 60);

    // The public routes answer without a token, and none of them with a 2xx that leaks anything
    // account-specific.
    let base = &server.base;
    let resp = send(
        "PUT",
        &format!("{base}/v2/api_auth"),
        &[],
        Some(b"{}".to_vec()),
    )
    .await;
    assert_envelope_error(&resp, 400, "api_auth without a key");
    let resp = send(
        "PUT",
        &format!("{base}/v2/user_auth"),
        &[],
        Some(b"{}".to_vec()),
    )
    .await;
    assert_envelope_error(&resp, 400, "user_auth without credentials");
    for path in ["/v2/openapi.json", "/v2/schemas", "/v2/schemas/devices"] {
        assert_eq!(
            send("GET", &format!("{base}{path}"), &[], None)
                .await
                .status,
            200
        );
    }
    for verb in ["GET", "POST"] {
        let resp = send(verb, &format!("{base}/directory"), &[], None).await;
        assert_envelope_error(&resp, 401, "directory without its login");
        assert!(resp.header("www-authenticate").starts_with("Basic"));
    }
    let metrics = send("GET", &format!("{base}/metrics"), &[], None).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("callflowd_http_requests_total"), "{text}");
    for secret in [
        server.api_key.as_str(),
        server.token.as_str(),
        other_token.as_str(),
        server.account_id.as_str(),
        SOME_ID,
        DIRECTORY_LOGIN.1,
    ] {
        assert!(!text.contains(secret), "/metrics shows {secret}");
    }
    server.shutdown().await;
}

/// A valid document per collection (the URL segment, the body).
fn documents() -> Vec<(&'static str, Value)> {
    vec![
        ("callflows", common::callflow(&["4100"])),
        (
            "devices",
            json!({"name": "Desk", "sip": {"username": "victim1", "password": "victim-sip-pw"}}),
        ),
        (
            "users",
            json!({"first_name": "Vic", "last_name": "Tim", "username": "vic", "password": "victim-pw"}),
        ),
        ("groups", json!({"name": "Sales"})),
        ("menus", json!({"name": "Main menu"})),
        (
            "temporal_rules",
            json!({"name": "Weekdays", "cycle": "weekly", "wdays": ["monday"]}),
        ),
        (
            "temporal_rules_sets",
            json!({"name": "Holidays", "temporal_rules": [SOME_ID]}),
        ),
        (
            "resources",
            json!({"name": "Carrier", "gateways": [{"server": "sip.example.com"}]}),
        ),
        ("conferences", json!({"name": "Room"})),
        ("media", json!({"name": "Greeting"})),
        ("lists", json!({"name": "VIP"})),
    ]
}

#[tokio::test]
async fn another_accounts_documents_are_out_of_reach() {
    let server = TestServer::start().await;
    let (victim, victim_token) = other_account(&server, "victim").await;
    let as_victim = |method: &'static str, path: String, body: Option<Value>| {
        let token = victim_token.clone();
        let base = server.base.clone();
        async move {
            send(
                method,
                &format!("{base}{path}"),
                &[
                    ("x-auth-token", &token),
                    ("content-type", "application/json"),
                ],
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
        }
    };

    let segments: BTreeSet<&str> = callflowd::documents::collections()
        .iter()
        .map(|c| c.name)
        .collect();
    let listed: BTreeSet<&str> = documents().iter().map(|(s, _)| *s).collect();
    assert_eq!(segments, listed, "every collection is probed");

    for (segment, doc) in documents() {
        let base = format!("/v2/accounts/{victim}/{segment}");
        let created = as_victim("PUT", base.clone(), Some(json!({ "data": doc }))).await;
        assert_eq!(created.status, 201, "{segment}: {}", created.json);
        let id = created.data()["id"].as_str().expect("id").to_string();
        let item = format!("{base}/{id}");
        let before = as_victim("GET", item.clone(), None).await;
        assert_eq!(before.status, 200);

        // The attacker's token on the victim's paths: 403, whatever the verb.
        let change = json!({"data": {"name": "pwned"}});
        for (verb, path, body) in [
            ("GET", base.clone(), None),
            ("PUT", base.clone(), Some(json!({ "data": doc }))),
            ("GET", item.clone(), None),
            ("POST", item.clone(), Some(change.clone())),
            ("PATCH", item.clone(), Some(change.clone())),
            ("DELETE", item.clone(), None),
        ] {
            let resp = server.request(verb, &path, body).await;
            assert_envelope_error(&resp, 403, &format!("{verb} {path}"));
            assert!(
                !resp.body.windows(id.len()).any(|w| w == id.as_bytes()),
                "{verb} {path} leaks nothing"
            );
        }
        // The victim's id under the attacker's own account: not found, not the victim's data.
        let own = format!("/v2/accounts/{}/{segment}/{id}", server.account_id);
        for (verb, body) in [
            ("GET", None),
            ("POST", Some(change.clone())),
            ("PATCH", Some(change.clone())),
            ("DELETE", None),
        ] {
            let resp = server.request(verb, &own, body).await;
            assert_envelope_error(&resp, 404, &format!("{verb} {own}"));
        }
        let list = server
            .get(&format!("/v2/accounts/{}/{segment}", server.account_id))
            .await;
        assert_eq!(list.status, 200);
        assert!(
            list.data()
                .as_array()
                .is_some_and(|items| items.iter().all(|i| i["id"] != id.as_str())),
            "{segment}: the victim's document is not listed in another account"
        );

        let after = as_victim("GET", item.clone(), None).await;
        assert_eq!(after.status, 200);
        assert_eq!(after.json["revision"], before.json["revision"], "{segment}");
        assert_eq!(after.data(), before.data(), "{segment}: unchanged");
    }

    // Raw media, metaflows, simulate and the account itself.
    let media = as_victim(
        "PUT",
        format!("/v2/accounts/{victim}/media"),
        Some(json!({"data": {"name": "Hold"}})),
    )
    .await;
    let media_id = media.data()["id"].as_str().expect("media id").to_string();
    let raw = format!("/v2/accounts/{victim}/media/{media_id}/raw");
    let resp = server
        .request_with("PUT", &raw, &[("content-type", "audio/wav")], None)
        .await;
    assert_envelope_error(&resp, 403, "upload");
    assert_envelope_error(&server.get(&raw).await, 403, "download");
    let metaflows = format!("/v2/accounts/{victim}/metaflows");
    assert_envelope_error(&server.get(&metaflows).await, 403, "metaflows");
    assert_envelope_error(
        &server.post(&metaflows, json!({"numbers": {}})).await,
        403,
        "metaflows",
    );
    assert_envelope_error(&server.delete(&metaflows).await, 403, "metaflows");
    assert_envelope_error(
        &server
            .post(
                &format!("/v2/accounts/{victim}/simulate"),
                json!({"number": "4100"}),
            )
            .await,
        403,
        "simulate",
    );
    assert_envelope_error(
        &server.get(&format!("/v2/accounts/{victim}")).await,
        403,
        "account",
    );
    server.shutdown().await;
}

/// Sends a request from a given loopback address (the server sees it as the source).
async fn send_from(source: IpAddr, method: &str, url: &str, body: Value) -> Resp {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(source));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(request).await.expect("HTTP request");
    common::read_response(response).await
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_source_address() {
    // Ten failures as by default, over ten minutes rather than one, so that a slow machine
    // cannot refill a failure's worth in the middle of the test.
    let server = TestServer::start_with(|config| {
        config.login_failure_window = Duration::from_secs(600);
    })
    .await;
    let store = server.service.store.clone();
    let user_id = "0000000000000000000000000000abcd";
    let credential = callflowd::auth::secrets::UserCredential::new(user_id, "alice", "s3cret")
        .expect("credential");
    store
        .add_user_credential(&server.account_id, credential)
        .await
        .expect("user login");
    let api_auth = format!("{}/v2/api_auth", server.base);
    let user_auth = format!("{}/v2/user_auth", server.base);
    let bad_key = json!({"data": {"api_key": "0".repeat(64)}});
    let good_key = json!({"data": {"api_key": server.api_key}});
    let bad_login = json!({"data": {"credentials": md5_credentials("alice", "guess"), "account_name": "admin"}});
    let good_login = json!({"data": {"credentials": md5_credentials("alice", "s3cret"), "account_name": "admin"}});

    // Successful logins cost nothing: many in a row from one source all work.
    let friend = ip("127.0.0.3");
    for _ in 0..15 {
        assert_eq!(
            send_from(friend, "PUT", &api_auth, good_key.clone())
                .await
                .status,
            201
        );
    }

    // One attacker: ten failures (API keys and user logins count together), then 429.
    let attacker = ip("127.0.0.2");
    for i in 0..10 {
        let (url, body) = if i % 2 == 0 {
            (&api_auth, &bad_key)
        } else {
            (&user_auth, &bad_login)
        };
        let resp = send_from(attacker, "PUT", url, body.clone()).await;
        assert_envelope_error(&resp, 401, &format!("failure {i}"));
    }
    for (url, body) in [
        (&api_auth, &bad_key),
        (&user_auth, &bad_login),
        // Even right credentials: the source is refused until its allowance refills.
        (&api_auth, &good_key),
        (&user_auth, &good_login),
    ] {
        let resp = send_from(attacker, "PUT", url, body.clone()).await;
        assert_envelope_error(&resp, 429, "over the limit");
        assert_eq!(resp.json["message"], "too_many_requests");
        let retry: u64 = resp
            .header("retry-after")
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert!(
            retry >= 50,
            "a failure's worth takes a minute to refill: {retry}"
        );
        assert_eq!(resp.json["data"]["retry_after"], retry);
    }

    // Others are not affected, and their successes do not reset the attacker.
    let bystander = ip("127.0.0.1");
    let resp = send_from(bystander, "PUT", &user_auth, good_login.clone()).await;
    assert_eq!(resp.status, 201, "{}", resp.json);
    let resp = send_from(bystander, "PUT", &api_auth, bad_key.clone()).await;
    assert_envelope_error(&resp, 401, "a bystander's own failure");
    let resp = send_from(friend, "PUT", &api_auth, good_key.clone()).await;
    assert_eq!(resp.status, 201);
    let resp = send_from(attacker, "PUT", &api_auth, good_key.clone()).await;
    assert_envelope_error(&resp, 429, "still limited");

    // Requests that are not login attempts (400: no key at all) are not counted.
    let blank = ip("127.0.0.4");
    for _ in 0..12 {
        let resp = send_from(blank, "PUT", &api_auth, json!({"data": {}})).await;
        assert_envelope_error(&resp, 400, "no key");
    }
    assert_eq!(
        send_from(blank, "PUT", &api_auth, good_key.clone())
            .await
            .status,
        201
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_login_allowance_refills_over_the_window() {
    let server = TestServer::start_with(|config| {
        config.login_max_failures = 2;
        config.login_failure_window = Duration::from_secs(4);
    })
    .await;
    let url = format!("{}/v2/api_auth", server.base);
    let bad = json!({"data": {"api_key": "f".repeat(64)}});
    let source = ip("127.0.0.5");
    for _ in 0..2 {
        assert_eq!(
            send_from(source, "PUT", &url, bad.clone()).await.status,
            401
        );
    }
    let resp = send_from(source, "PUT", &url, bad.clone()).await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), "2");
    // One failure comes back every two seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        send_from(source, "PUT", &url, bad.clone()).await.status,
        401
    );
    assert_eq!(
        send_from(source, "PUT", &url, bad.clone()).await.status,
        429
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_limit_can_be_turned_off() {
    let server = TestServer::start_with(|config| config.login_max_failures = 0).await;
    let url = format!("{}/v2/api_auth", server.base);
    let bad = json!({"data": {"api_key": "f".repeat(64)}});
    for _ in 0..15 {
        assert_eq!(
            send_from(ip("127.0.0.6"), "PUT", &url, bad.clone())
                .await
                .status,
            401
        );
    }
    server.shutdown().await;
}

#[test]
fn the_defaults_bind_to_loopback() {
    let config = Config::default();
    assert_eq!(config.listen.ip(), ip("127.0.0.1"));
    assert_eq!(config.listen.port(), 8000);
    assert_eq!(config.esl_listen.ip(), ip("127.0.0.1"));
    assert!(config.tls_cert.is_none() && config.tls_key.is_none());
    for net in &config.esl_allowed_peers {
        assert!(net.contains(ip("127.0.0.1")) || net.contains(ip("::1")));
        assert!(!net.contains(ip("10.1.2.3")));
    }
    assert!(
        !config
            .directory_allowed_peers
            .iter()
            .any(|n| n.contains(ip("192.168.1.1")))
    );
    assert_eq!(config.login_max_failures, 10);
    assert_eq!(config.login_failure_window, Duration::from_secs(60));
}

#[tokio::test]
async fn the_esl_listener_drops_peers_outside_its_allow_list() {
    let server = TestServer::start_with(|config| {
        config.esl_allowed_peers = vec!["10.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.esl_addr())
        .await
        .expect("connect");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the listener closes the connection at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a refused peer gets nothing: {read:?}"
    );
    let _ = stream.write_all(b"connect\n\n").await;
    assert_eq!(
        server
            .service
            .engine
            .stats
            .peers_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        server
            .service
            .engine
            .stats
            .calls_started
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    server.shutdown().await;

    // With the default allow-list (loopback) the same connection is taken: the engine speaks.
    let server = TestServer::start().await;
    let mut stream = tokio::net::TcpStream::connect(server.esl_addr())
        .await
        .expect("connect");
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(n)) if n > 0),
        "an allowed peer is spoken to: {read:?}"
    );
    drop(stream);
    server.shutdown().await;
}

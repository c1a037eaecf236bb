//! Secrets never reach the logs: this test process installs a subscriber that records every
//! event and span at TRACE level (its own filter: `RUST_LOG` cannot lower it) into a buffer,
//! drives every path that handles a secret (logins that work and fail, tokens in each
//! transport, devices with SIP passwords, users with passwords, the FreeSWITCH directory with
//! its basic-auth login and a1-hashes, the rate limit) and then looks for each secret in what
//! was recorded.
//!
//! One test only: the subscriber is process-wide.

mod common;

use base64::Engine as _;
use callflowd::auth::secrets::{md5_credentials, sha1_credentials};
use common::{TestServer, send};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

const DIRECTORY_USER: &str = "freeswitch";
const DIRECTORY_PASSWORD: &str = "Dir-Pass-4321-xyz";
const USER_PASSWORD: &str = "User-Pass-1234-xyz";
const WRONG_PASSWORD: &str = "Wrong-Pass-9999-xyz";
const SIP_PASSWORD: &str = "Sip-Pass-5678-xyz";
const SIP_PASSWORD_2: &str = "Sip-Pass-2468-xyz";

#[tokio::test]
async fn no_secret_appears_in_the_logs() {
    let sink = Sink::default();
    let writer = sink.clone();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("trace"))
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this process's only subscriber");

    let server = TestServer::start_with(|config| {
        config.directory_username = Some(DIRECTORY_USER.into());
        config.directory_password = Some(DIRECTORY_PASSWORD.into());
        config.login_max_failures = 4;
    })
    .await;
    let base = server.base.clone();
    let account = server.account_id.clone();
    let mut secrets: Vec<(String, String)> = vec![
        ("API key".into(), server.api_key.clone()),
        ("api_auth token".into(), server.token.clone()),
        ("directory password".into(), DIRECTORY_PASSWORD.into()),
        ("user password".into(), USER_PASSWORD.into()),
        ("wrong password".into(), WRONG_PASSWORD.into()),
        ("SIP password".into(), SIP_PASSWORD.into()),
        ("new SIP password".into(), SIP_PASSWORD_2.into()),
    ];

    // A user with a password, then user_auth with its md5 and sha1 digests.
    let user = server
        .put(
            &format!("/v2/accounts/{account}/users"),
            json!({"first_name": "Ann", "last_name": "Lee", "username": "ann", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.json);
    let md5 = md5_credentials("ann", USER_PASSWORD);
    let sha1 = sha1_credentials("ann", USER_PASSWORD);
    secrets.push(("md5 credentials".into(), md5.clone()));
    secrets.push(("sha1 credentials".into(), sha1.clone()));
    let login = send(
        "PUT",
        &format!("{base}/v2/user_auth"),
        &[("content-type", "application/json")],
        Some(
            json!({"data": {"credentials": md5, "account_name": "admin"}})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(login.status, 201, "{}", login.json);
    let user_token = login.json["auth_token"]
        .as_str()
        .expect("token")
        .to_string();
    secrets.push(("user_auth token".into(), user_token.clone()));
    let login = send(
        "PUT",
        &format!("{base}/v2/user_auth"),
        &[],
        Some(
            json!({"data": {"credentials": sha1, "account_realm": "callflowd.local", "method": "sha"}})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(login.status, 201, "{}", login.json);

    // A device with a SIP password, changed by PATCH and POST, read back.
    let device = server
        .put(
            &format!("/v2/accounts/{account}/devices"),
            json!({"name": "Desk", "sip": {"username": "2001", "password": SIP_PASSWORD}}),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.json);
    let device_id = device.data()["id"].as_str().expect("id").to_string();
    let device_path = format!("/v2/accounts/{account}/devices/{device_id}");
    let patched = server
        .patch(&device_path, json!({"sip": {"password": SIP_PASSWORD_2}}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(server.get(&device_path).await.status, 200);
    let bad = server
        .post(&device_path, json!({"sip": {"password": SIP_PASSWORD}}))
        .await;
    assert_eq!(bad.status, 400, "a device needs a name: {}", bad.json);

    // The directory: right and wrong basic-auth logins; the reply carries the a1-hash.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{DIRECTORY_USER}:{DIRECTORY_PASSWORD}"))
    );
    secrets.push(("basic-auth header".into(), basic.clone()));
    let form = "section=directory&tag_name=domain&key_name=name&key_value=callflowd.local\
                &action=sip_auth&user=2001&domain=callflowd.local&sip_auth_username=2001";
    let reply = send(
        "POST",
        &format!("{base}/directory"),
        &[
            ("authorization", &basic),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(form.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(reply.status, 200);
    let a1 = callflowd::api::directory::a1_hash("2001", "callflowd.local", SIP_PASSWORD_2);
    assert!(String::from_utf8_lossy(&reply.body).contains(&a1));
    secrets.push(("a1-hash".into(), a1));
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{DIRECTORY_USER}:{WRONG_PASSWORD}"))
    );
    let reply = send(
        "POST",
        &format!("{base}/directory?section=directory&user=2001&domain=callflowd.local"),
        &[("authorization", &wrong)],
        None,
    )
    .await;
    assert_eq!(reply.status, 401);

    // Tokens in every transport, on good and bad paths.
    let list = format!("{base}/v2/accounts/{account}/callflows");
    for (url, headers) in [
        (format!("{list}?auth_token={user_token}"), vec![]),
        (format!("{base}/v2/nowhere?auth_token={user_token}"), vec![]),
        (
            list.clone(),
            vec![("authorization", format!("Bearer {user_token}"))],
        ),
        (
            format!("{base}/v2/accounts/{}/callflows", "f".repeat(32)),
            vec![("x-auth-token", user_token.clone())],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = send("GET", &url, &headers, None).await;
        assert!(resp.status < 500, "{url}: {}", resp.json);
    }
    // A forged token (the right one with a flipped signature character).
    let mut forged = server.token.clone();
    let last = if forged.ends_with('A') { "B" } else { "A" };
    forged.replace_range(forged.len() - 1.., last);
    secrets.push(("forged token".into(), forged.clone()));
    assert_eq!(
        send("GET", &list, &[("x-auth-token", &forged)], None)
            .await
            .status,
        401
    );

    // Failed logins, up to the rate limit and past it.
    let wrong_key = "ab".repeat(32);
    secrets.push(("wrong API key".into(), wrong_key.clone()));
    let wrong_md5 = md5_credentials("ann", WRONG_PASSWORD);
    secrets.push(("wrong md5 credentials".into(), wrong_md5.clone()));
    for body in [
        json!({"data": {"api_key": wrong_key}}),
        json!({"data": {"credentials": wrong_md5, "account_name": "admin"}}),
        json!({"data": {"api_key": wrong_key}}),
        json!({"data": {"credentials": wrong_md5, "account_name": "admin"}}),
        json!({"data": {"api_key": wrong_key}}),
        json!({"data": {"api_key": server.api_key}}),
    ] {
        let path = if body["data"].get("api_key").is_some() {
            "api_auth"
        } else {
            "user_auth"
        };
        let resp = send(
            "PUT",
            &format!("{base}/v2/{path}"),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await;
        assert!(matches!(resp.status, 401 | 429), "{}", resp.json);
    }
    let api_token = server.token.clone();
    server.shutdown().await;

    let logs = sink.text();
    // The capture works and saw the interesting paths.
    for expected in [
        "login failed",
        "too many failed logins",
        "token refused",
        "request",
        "status=401",
        "status=201",
    ] {
        assert!(logs.contains(expected), "no {expected:?} in the logs");
    }
    for (what, secret) in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "the {what} appears in the logs:\n{}",
            logs.lines()
                .filter(|line| line.contains(secret.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Nor any long piece of a token (its signature, its payload).
    for token in [&api_token, &user_token] {
        for part in token.split('.').filter(|p| p.len() >= 16) {
            assert!(!logs.contains(part), "part of a token appears in the logs");
        }
    }
}

//! Black-box tests of authentication: api_auth, user_auth, 401 (missing, invalid, expired),
//! 403 (another account), token transports, and the account route.

mod common;

use base64::Engine as _;
use callflowd::auth::secrets::{UserCredential, md5_credentials, sha1_credentials};
use callflowd::store::Store;
use common::{TestServer, send};
use serde_json::{Value, json};
use std::time::Duration;

fn assert_401(resp: &common::Resp) {
    assert_eq!(resp.status, 401, "{}", resp.json);
    assert_eq!(resp.header("content-type"), "application/json");
    assert_eq!(resp.json["status"], "error");
    assert_eq!(resp.json["error"], "401", "the code is a string");
    assert_eq!(resp.json["message"], "invalid_credentials");
    assert_eq!(resp.json["data"], json!({"message": "invalid credentials"}));
    assert!(resp.json["request_id"].is_string());
}

#[tokio::test]
async fn api_auth_issues_a_jwt_shaped_token() {
    let server = TestServer::start().await;
    let resp = send(
        "PUT",
        &format!("{}/v2/api_auth", server.base),
        &[("content-type", "application/json")],
        Some(
            json!({"data": {"api_key": server.api_key}, "accept_charges": true})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.json);
    assert_eq!(resp.json["status"], "success");
    assert_eq!(resp.data()["account_id"], server.account_id.as_str());
    for key in ["reseller_id", "is_reseller", "language", "apps"] {
        assert!(resp.data().get(key).is_some(), "{key}");
    }
    let token = resp.json["auth_token"].as_str().unwrap();
    let middle = token.split('.').nth(1).expect("JWT has three segments");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(middle)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["account_id"], server.account_id.as_str());
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);

    // The token works in all three transports.
    let path = format!("{}{}", server.base, server.callflows());
    assert_eq!(
        send("GET", &path, &[("x-auth-token", token)], None)
            .await
            .status,
        200
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(
        send("GET", &path, &[("authorization", &bearer)], None)
            .await
            .status,
        200
    );
    assert_eq!(
        send("GET", &format!("{path}?auth_token={token}"), &[], None)
            .await
            .status,
        200
    );

    // Wrong or malformed keys.
    for body in [
        json!({"data": {"api_key": "0".repeat(64)}}),
        json!({"data": {"api_key": "short"}}),
        json!({"data": {"api_key": format!("{}0000", &server.api_key[..60])}}),
    ] {
        let resp = send(
            "PUT",
            &format!("{}/v2/api_auth", server.base),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await;
        if body["data"]["api_key"] != server.api_key {
            assert_401(&resp);
        }
    }
    let resp = send(
        "PUT",
        &format!("{}/v2/api_auth", server.base),
        &[],
        Some(b"{\"data\":{}}".to_vec()),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert!(resp.data()["api_key"]["required"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn missing_invalid_and_forged_tokens_are_401() {
    let server = TestServer::start().await;
    let url = format!("{}{}", server.base, server.callflows());
    assert_401(&send("GET", &url, &[], None).await);
    assert_401(&send("GET", &url, &[("x-auth-token", "garbage")], None).await);
    assert_401(&send("GET", &url, &[("authorization", "Bearer a.b.c")], None).await);
    // Same header and payload, another account in the payload: the signature no longer matches.
    let mut parts: Vec<String> = server.token.split('.').map(str::to_string).collect();
    let forged = json!({"account_id": "f".repeat(32), "method": "api_auth", "iat": 0, "exp": u64::MAX, "jti": "x"});
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    assert_401(&send("GET", &url, &[("x-auth-token", &parts.join("."))], None).await);
    // Writes need a token too.
    assert_401(&send("PUT", &url, &[], Some(b"{\"data\":{}}".to_vec())).await);
    let account = format!("{}/v2/accounts/{}", server.base, server.account_id);
    assert_401(&send("GET", &account, &[], None).await);
    server.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let server =
        TestServer::start_with(|config| config.token_lifetime = Duration::from_secs(1)).await;
    let token = common::api_auth(&server.base, &server.api_key).await;
    let url = format!("{}{}", server.base, server.callflows());
    assert_eq!(
        send("GET", &url, &[("x-auth-token", &token)], None)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_401(&send("GET", &url, &[("x-auth-token", &token)], None).await);
    server.shutdown().await;
}

#[tokio::test]
async fn another_accounts_path_is_403() {
    let server = TestServer::start().await;
    let other = server
        .service
        .store
        .create_account("other", Some("other.test"))
        .await
        .unwrap();
    for path in [
        format!("/v2/accounts/{}/callflows", other.id),
        format!(
            "/v2/accounts/{}/callflows/0123456789abcdef0123456789abcdef",
            other.id
        ),
        format!("/v2/accounts/{}", other.id),
    ] {
        let resp = server.get(&path).await;
        assert_eq!(resp.status, 403, "{path}: {}", resp.json);
        assert_eq!(resp.json["error"], "403");
        assert_eq!(resp.json["message"], "forbidden");
    }
    let resp = server
        .put(
            &format!("/v2/accounts/{}/callflows", other.id),
            common::callflow(&["1"]),
        )
        .await;
    assert_eq!(resp.status, 403);
    server.shutdown().await;
}

#[tokio::test]
async fn user_auth_with_md5_and_sha1() {
    let server = TestServer::start().await;
    let store = server.service.store.clone();
    let account = store
        .create_account("Acme Corp", Some("acme.test"))
        .await
        .unwrap();
    let credential =
        UserCredential::new("0000000000000000000000000000beef", "alice", "s3cret").unwrap();
    store
        .add_user_credential(&account.id, credential)
        .await
        .unwrap();
    let url = format!("{}/v2/user_auth", server.base);

    let resp = send(
        "PUT",
        &url,
        &[],
        Some(json!({"data": {"credentials": md5_credentials("alice", "s3cret"), "account_name": "acme corp"}}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.json);
    assert_eq!(resp.data()["account_id"], account.id.as_str());
    assert_eq!(resp.data()["owner_id"], "0000000000000000000000000000beef");
    let token = resp.json["auth_token"].as_str().unwrap().to_string();
    let resp = send(
        "GET",
        &format!("{}/v2/accounts/{}", server.base, account.id),
        &[("x-auth-token", &token)],
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.data(),
        &json!({"id": account.id, "name": "Acme Corp", "realm": "acme.test"})
    );

    let resp = send(
        "PUT",
        &url,
        &[],
        Some(json!({"data": {"credentials": sha1_credentials("alice", "s3cret"), "account_realm": "acme.test", "method": "sha"}}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.json);

    for data in [
        json!({"credentials": md5_credentials("alice", "wrong"), "account_name": "Acme Corp"}),
        json!({"credentials": md5_credentials("alice", "s3cret"), "account_name": "nobody"}),
        json!({"credentials": sha1_credentials("alice", "s3cret"), "account_name": "Acme Corp"}),
    ] {
        assert_401(
            &send(
                "PUT",
                &url,
                &[],
                Some(json!({"data": data}).to_string().into_bytes()),
            )
            .await,
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn own_account_is_readable() {
    let server = TestServer::start().await;
    let resp = server
        .get(&format!("/v2/accounts/{}", server.account_id))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.data()["id"], server.account_id.as_str());
    assert_eq!(resp.data()["name"], "admin");
    assert_eq!(resp.data()["realm"], "callflowd.local");
    server.shutdown().await;
}

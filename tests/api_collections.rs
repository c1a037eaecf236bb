//! Black-box tests of the collections beyond callflows (devices, users, groups, menus, temporal
//! rules and rule sets, resources, conferences, media, lists) over real HTTP: the callflow test
//! matrix applied to each, then what is special to some (uniqueness of SIP and login names,
//! user_auth for API-created users, media uploads, callflow metadata) and the account metaflows.

mod common;

use common::{TestServer, send};
use serde_json::{Value, json};

/// One collection under test: its URL segment, a valid document, a document with one bad field
/// and the (path, rule) of the error it must give.
struct Case {
    segment: &'static str,
    valid: Value,
    bad: Value,
    error: (&'static str, &'static str),
}

const SOME_ID: &str = "0123456789abcdef0123456789abcdef";

fn cases() -> Vec<Case> {
    vec![
        Case {
            segment: "devices",
            valid: json!({"name": "Desk", "sip": {"username": "desk1", "password": "secret1"}}),
            bad: json!({"name": "Desk", "sip": {"username": "a b"}}),
            error: ("sip.username", "pattern"),
        },
        Case {
            segment: "users",
            valid: json!({"name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"}),
            bad: json!({"name": "Ann", "first_name": "Ann"}),
            error: ("last_name", "required"),
        },
        Case {
            segment: "groups",
            valid: json!({"name": "Sales", "endpoints": {SOME_ID: {"type": "device"}}}),
            bad: json!({"name": "Sales", "endpoints": {SOME_ID: {"type": "fax"}}}),
            error: ("endpoints.0123456789abcdef0123456789abcdef.type", "enum"),
        },
        Case {
            segment: "menus",
            valid: json!({"name": "Main menu", "retries": 2}),
            bad: json!({"name": "Main menu", "retries": 0}),
            error: ("retries", "minimum"),
        },
        Case {
            segment: "temporal_rules",
            valid: json!({"name": "Weekdays", "cycle": "weekly", "wdays": ["monday", "friday"]}),
            bad: json!({"name": "Weekdays", "cycle": "hourly"}),
            error: ("cycle", "enum"),
        },
        Case {
            segment: "temporal_rules_sets",
            valid: json!({"name": "Holidays", "temporal_rules": [SOME_ID]}),
            bad: json!({"name": "Holidays"}),
            error: ("temporal_rules", "required"),
        },
        Case {
            segment: "temporal_rule_sets",
            valid: json!({"name": "Closures", "temporal_rules": [SOME_ID]}),
            bad: json!({"name": "Closures", "temporal_rules": []}),
            error: ("temporal_rules", "minItems"),
        },
        Case {
            segment: "resources",
            valid: json!({"name": "Carrier", "rules": ["^\\+?(\\d{10,15})$"], "gateways": [{"server": "sip.example.com", "username": "u", "password": "p"}]}),
            bad: json!({"name": "Carrier", "gateways": []}),
            error: ("gateways", "minItems"),
        },
        Case {
            segment: "conferences",
            valid: json!({"name": "Room", "conference_numbers": ["3000"]}),
            bad: json!({"name": ""}),
            error: ("name", "minLength"),
        },
        Case {
            segment: "media",
            valid: json!({"name": "Greeting", "description": "main greeting"}),
            bad: json!({"name": "Greeting", "language": "english"}),
            error: ("language", "pattern"),
        },
        Case {
            segment: "lists",
            valid: json!({"name": "VIP", "entries": [{"number": "555", "displayname": "Friend"}]}),
            bad: json!({"name": "VIP", "entries": "none"}),
            error: ("entries", "type"),
        },
    ]
}

fn assert_error(resp: &common::Resp, status: u16, message: &str) {
    assert_eq!(resp.status, status, "{}", resp.json);
    assert_eq!(resp.header("content-type"), "application/json");
    assert_eq!(resp.json["status"], "error");
    assert_eq!(resp.json["error"], Value::String(status.to_string()));
    assert_eq!(resp.json["message"], message, "{}", resp.json);
    assert!(
        resp.json["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

fn assert_success(resp: &common::Resp, status: u16) {
    assert_eq!(resp.status, status, "{}", resp.json);
    assert_eq!(resp.header("content-type"), "application/json");
    assert_eq!(resp.json["status"], "success", "{}", resp.json);
    for key in ["auth_token", "request_id", "revision", "data", "timestamp"] {
        assert!(resp.json.get(key).is_some(), "missing {key}");
    }
}

/// Whether `actual` holds everything `expected` does (stored documents gain schema defaults).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, y)| contains(x, y))
        }
        _ => actual == expected,
    }
}

/// Another valid document: renamed, with its unique fields (SIP username) changed too.
fn with_name(doc: &Value, name: &str) -> Value {
    let mut doc = doc.clone();
    doc["name"] = json!(name);
    if doc["sip"]["username"].is_string() {
        doc["sip"]["username"] = json!(name.replace(' ', "_"));
    }
    doc
}

/// A second account (created directly in the store) and a token for it.
async fn second_account(server: &TestServer, name: &str, realm: &str) -> (String, String) {
    use callflowd::store::Store;
    let account = server
        .service
        .store
        .create_account(name, Some(realm))
        .await
        .expect("account");
    let key = callflowd::auth::secrets::new_api_key();
    server
        .service
        .store
        .add_api_key(&account.id, key.hash)
        .await
        .expect("key");
    let token = common::api_auth(&server.base, &key.key).await;
    (account.id, token)
}

#[tokio::test]
async fn the_callflow_matrix_for_every_collection() {
    let server = TestServer::start().await;
    let (other_account, _) = second_account(&server, "other", "other.example").await;
    for case in cases() {
        let c = case.segment;
        let base = format!("/v2/accounts/{}/{c}", server.account_id);

        // Create: 201, envelope, Location, id; unknown keys kept, private keys dropped.
        let mut doc = case.valid.clone();
        doc["ui_metadata"] = json!({"origin": "test"});
        doc["pvt_type"] = json!("hacked");
        doc["_id"] = json!("mine");
        let created = server.put(&base, doc).await;
        assert_success(&created, 201);
        let id = created.data()["id"].as_str().expect("id").to_string();
        assert_eq!(id.len(), 32, "{c}");
        assert!(created.header("location").ends_with(&id), "{c}");
        assert!(created.json["revision"].as_str().unwrap().starts_with("1-"));
        assert_eq!(created.data()["ui_metadata"]["origin"], "test", "{c}");
        for private in ["pvt_type", "_id", "_rev", "pvt_created"] {
            assert!(
                created.data().get(private).is_none(),
                "{c}: {private} leaked"
            );
        }
        let item = format!("{base}/{id}");

        // Get: document + id + metadata.
        let fetched = server.get(&item).await;
        assert_success(&fetched, 200);
        assert_eq!(fetched.data()["id"], id.as_str());
        assert!(fetched.data()["metadata"].is_object(), "{c}");
        assert_eq!(fetched.json["revision"], created.json["revision"]);

        // Replace: what GET returned (id, metadata included), renamed, ui_metadata dropped.
        let mut body = fetched.data().clone();
        body["name"] = json!("Renamed");
        body.as_object_mut().unwrap().remove("ui_metadata");
        let replaced = server.post(&item, body).await;
        assert_success(&replaced, 200);
        assert_eq!(replaced.data()["name"], "Renamed", "{c}");
        assert!(replaced.data().get("ui_metadata").is_none(), "{c}");
        assert!(replaced.data().get("metadata").is_none(), "{c}");
        assert!(
            replaced.json["revision"]
                .as_str()
                .unwrap()
                .starts_with("2-")
        );

        // Patch: only the name changes; null deletes a key.
        let patched = server
            .patch(&item, json!({"name": "Patched", "extra": {"a": 1}}))
            .await;
        assert_success(&patched, 200);
        assert_eq!(patched.data()["name"], "Patched");
        for (key, value) in case.valid.as_object().unwrap() {
            if key != "name" {
                assert!(
                    contains(&patched.data()[key], value),
                    "{c}: {key} kept by PATCH: {}",
                    patched.json
                );
            }
        }
        let patched = server.patch(&item, json!({"extra": null})).await;
        assert!(patched.data().get("extra").is_none(), "{c}");

        // Validation: Kazoo's shape, on create, replace and patch.
        let bad = server.put(&base, case.bad.clone()).await;
        assert_error(&bad, 400, "validation error");
        let (path, rule) = case.error;
        assert!(
            bad.data()[path][rule]["message"].is_string(),
            "{c}: expected {path}.{rule} in {}",
            bad.json
        );
        let bad = server.post(&item, case.bad.clone()).await;
        assert_error(&bad, 400, "validation error");
        let bad = server.put(&base, json!(["not", "an", "object"])).await;
        assert_error(&bad, 400, "validation error");
        assert!(bad.data()["data"]["type"].is_object(), "{}", bad.json);

        // Listing: summaries, paging and filters.
        for n in 0..2 {
            let resp = server
                .put(&base, with_name(&case.valid, &format!("Extra {n}")))
                .await;
            assert_success(&resp, 201);
        }
        let list = server.get(&base).await;
        assert_success(&list, 200);
        let rows = list.data().as_array().expect("list");
        assert_eq!(rows.len(), 3, "{c}: {}", list.json);
        assert!(rows.iter().all(|r| r["id"].is_string()));
        let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "{c}: ascending by id");
        let page = server.get(&format!("{base}?page_size=2")).await;
        assert_eq!(page.data().as_array().unwrap().len(), 2);
        assert_eq!(page.json["page_size"], 2);
        let next = page.json["next_start_key"].as_str().expect("next key");
        let last = server
            .get(&format!("{base}?page_size=2&start_key={next}"))
            .await;
        assert_eq!(last.data().as_array().unwrap().len(), 1, "{c}");
        assert!(last.json.get("next_start_key").is_none());
        let all = server.get(&format!("{base}?paginate=false")).await;
        assert!(all.json.get("page_size").is_none());
        let filtered = server.get(&format!("{base}?filter_name=Patched")).await;
        let rows = filtered.data().as_array().unwrap();
        assert_eq!(rows.len(), 1, "{c}: {}", filtered.json);
        assert_eq!(rows[0]["id"], id.as_str());
        let filtered = server.get(&format!("{base}?filter_not_name=Patched")).await;
        assert_eq!(filtered.data().as_array().unwrap().len(), 2, "{c}");

        // Unknown ids, wrong verbs, tokens.
        let missing = format!("{base}/{SOME_ID}");
        for method in ["GET", "POST", "PATCH", "DELETE"] {
            let body = matches!(method, "POST" | "PATCH").then(|| json!({"data": case.valid}));
            let resp = server.request(method, &missing, body).await;
            assert_error(&resp, 404, "bad_identifier");
        }
        let resp = server.request("PUT", &item, None).await;
        assert_error(&resp, 405, "invalid_method");
        let resp = server.request("DELETE", &base, None).await;
        assert_error(&resp, 405, "invalid_method");
        let resp = send("GET", &format!("{}{base}", server.base), &[], None).await;
        assert_error(&resp, 401, "invalid_credentials");
        assert_eq!(resp.json["error"], "401");
        let resp = server
            .get(&format!("/v2/accounts/{other_account}/{c}"))
            .await;
        assert_error(&resp, 403, "forbidden");

        // Delete: 200 with the document and _read_only, then 404 and out of the list.
        let deleted = server.delete(&item).await;
        assert_success(&deleted, 200);
        assert_eq!(deleted.data()["_read_only"], json!({"deleted": true}));
        assert_eq!(deleted.data()["name"], "Patched");
        let gone = server.get(&item).await;
        assert_error(&gone, 404, "bad_identifier");
        let list = server.get(&base).await;
        assert!(
            list.data()
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["id"] != id.as_str()),
            "{c}"
        );
        // Leave the collection empty (temporal_rule_sets shares it with temporal_rules_sets).
        for row in list.data().as_array().unwrap() {
            let path = format!("{base}/{}", row["id"].as_str().unwrap());
            assert_success(&server.delete(&path).await, 200);
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn rule_sets_are_one_collection_under_two_paths() {
    let server = TestServer::start().await;
    let kazoo = format!("/v2/accounts/{}/temporal_rules_sets", server.account_id);
    let alias = format!("/v2/accounts/{}/temporal_rule_sets", server.account_id);
    let created = server
        .put(&alias, json!({"name": "Set", "temporal_rules": [SOME_ID]}))
        .await;
    assert_success(&created, 201);
    let id = created.data()["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("{kazoo}/{id}")).await.status, 200);
    assert_eq!(server.get(&kazoo).await.data().as_array().unwrap().len(), 1);
    // The engine reads Kazoo's collection name.
    use callflowd::store::StoreRead;
    let stored = server
        .service
        .store
        .document(&server.account_id, "temporal_rules_sets", id)
        .unwrap();
    assert_eq!(stored.unwrap()["name"], "Set");
    server.shutdown().await;
}

#[tokio::test]
async fn device_sip_usernames_are_unique_per_realm() {
    let server = TestServer::start().await;
    let devices = format!("/v2/accounts/{}/devices", server.account_id);
    let first = server
        .put(
            &devices,
            json!({"name": "A", "sip": {"username": "2001", "password": "pass2001"}}),
        )
        .await;
    assert_success(&first, 201);
    let first_id = first.data()["id"].as_str().unwrap().to_string();
    assert_eq!(
        first.data()["sip"]["password"],
        "pass2001",
        "Kazoo returns it"
    );
    assert_eq!(first.data()["enabled"], true, "schema defaults are stored");

    // Same username (any case) in the account realm: 400 unique.
    let dup = server
        .put(
            &devices,
            json!({"name": "B", "sip": {"username": "2001", "password": "other1"}}),
        )
        .await;
    assert_error(&dup, 400, "validation error");
    assert_eq!(
        dup.data()["sip.username"]["unique"]["message"],
        "SIP credentials already in use"
    );
    assert_eq!(dup.data()["sip.username"]["unique"]["cause"], "2001");
    let explicit = server
        .put(
            &devices,
            json!({"name": "B", "sip": {"username": "2001", "password": "other1", "realm": "CALLFLOWD.local"}}),
        )
        .await;
    assert_error(&explicit, 400, "validation error");

    // Another realm is another namespace.
    let elsewhere = server
        .put(
            &devices,
            json!({"name": "B", "sip": {"username": "2001", "password": "other1", "realm": "branch.example"}}),
        )
        .await;
    assert_success(&elsewhere, 201);
    let b = format!("{devices}/{}", elsewhere.data()["id"].as_str().unwrap());
    // Moving it into the account realm collides; a PATCH is checked like a create.
    let moved = server.patch(&b, json!({"sip": {"realm": null}})).await;
    assert_error(&moved, 400, "validation error");

    // Another account cannot take the same credentials in this realm either, and is not told
    // which device holds them.
    let (other, token) = second_account(&server, "other", "other.example").await;
    let resp = send(
        "PUT",
        &format!("{}/v2/accounts/{other}/devices", server.base),
        &[
            ("x-auth-token", token.as_str()),
            ("content-type", "application/json"),
        ],
        Some(
            json!({"data": {"name": "X", "sip": {"username": "2001", "password": "xxxxx", "realm": "callflowd.local"}}})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_error(&resp, 400, "validation error");
    assert!(!resp.body.windows(32).any(|w| w == first_id.as_bytes()));

    // Deleting frees the credentials.
    assert_eq!(
        server.delete(&format!("{devices}/{first_id}")).await.status,
        200
    );
    let again = server
        .put(
            &devices,
            json!({"name": "C", "sip": {"username": "2001", "password": "pass2001"}}),
        )
        .await;
    assert_success(&again, 201);
    server.shutdown().await;
}

async fn user_auth(server: &TestServer, credentials: &str, method: Option<&str>) -> common::Resp {
    let mut data = json!({"credentials": credentials, "account_name": "admin"});
    if let Some(method) = method {
        data["method"] = json!(method);
    }
    send(
        "PUT",
        &format!("{}/v2/user_auth", server.base),
        &[("content-type", "application/json")],
        Some(json!({ "data": data }).to_string().into_bytes()),
    )
    .await
}

#[tokio::test]
async fn users_log_in_with_user_auth_and_passwords_stay_secret() {
    use callflowd::auth::secrets::{md5_credentials, sha1_credentials};
    let server = TestServer::start().await;
    let users = format!("/v2/accounts/{}/users", server.account_id);
    let created = server
        .put(
            &users,
            json!({"first_name": "Alice", "last_name": "Ng", "username": "Alice", "password": "s3cret!"}),
        )
        .await;
    assert_success(&created, 201);
    let id = created.data()["id"].as_str().unwrap().to_string();
    let item = format!("{users}/{id}");
    assert!(created.data().get("password").is_none());
    for resp in [server.get(&item).await, server.get(&users).await] {
        let text = String::from_utf8_lossy(&resp.body).to_string();
        assert!(!text.contains("s3cret"), "password leaked: {text}");
        assert!(
            !text.contains("pvt_login") && !text.contains("argon2"),
            "{text}"
        );
    }

    // md5 and sha1 digests of the lowercased username, as Kazoo UIs send.
    let login = user_auth(&server, &md5_credentials("alice", "s3cret!"), None).await;
    assert_eq!(login.status, 201, "{}", login.json);
    assert_eq!(login.data()["owner_id"], id.as_str());
    assert_eq!(login.data()["account_id"], server.account_id.as_str());
    let login = user_auth(&server, &sha1_credentials("alice", "s3cret!"), Some("sha")).await;
    assert_eq!(login.status, 201, "{}", login.json);
    let wrong = user_auth(&server, &md5_credentials("alice", "nope"), None).await;
    assert_error(&wrong, 401, "invalid_credentials");

    // Usernames are unique per account, case-insensitively.
    let dup = server
        .put(
            &users,
            json!({"first_name": "Other", "last_name": "Alice", "username": "ALICE"}),
        )
        .await;
    assert_error(&dup, 400, "validation error");
    assert!(dup.data()["username"]["unique"].is_object(), "{}", dup.json);

    // A new password (PATCH: hashed with the stored username) replaces the old one.
    let changed = server.patch(&item, json!({"password": "n3w-pass"})).await;
    assert_success(&changed, 200);
    assert_eq!(
        user_auth(&server, &md5_credentials("alice", "s3cret!"), None)
            .await
            .status,
        401
    );
    assert_eq!(
        user_auth(&server, &md5_credentials("alice", "n3w-pass"), None)
            .await
            .status,
        201
    );
    // A POST that echoes GET (no password) keeps the login.
    let mut body = server.get(&item).await.data().clone();
    body["email"] = json!("alice@example.com");
    assert_success(&server.post(&item, body).await, 200);
    assert_eq!(
        user_auth(&server, &md5_credentials("alice", "n3w-pass"), None)
            .await
            .status,
        201
    );
    // Renaming needs the password again.
    let renamed = server.patch(&item, json!({"username": "al"})).await;
    assert_error(&renamed, 400, "validation error");
    assert!(renamed.data()["password"]["required"].is_object());
    let renamed = server
        .patch(&item, json!({"username": "al", "password": "n3w-pass"}))
        .await;
    assert_success(&renamed, 200);
    assert_eq!(
        user_auth(&server, &md5_credentials("al", "n3w-pass"), None)
            .await
            .status,
        201
    );
    // A password needs a username; bad types are 400.
    let resp = server
        .put(
            &users,
            json!({"first_name": "B", "last_name": "C", "password": "x"}),
        )
        .await;
    assert!(
        resp.data()["username"]["required"].is_object(),
        "{}",
        resp.json
    );
    let resp = server
        .put(
            &users,
            json!({"first_name": "B", "last_name": "C", "username": "bc", "password": 12}),
        )
        .await;
    assert!(resp.data()["password"]["type"].is_object(), "{}", resp.json);

    // Disabled or deleted users cannot log in.
    assert_success(&server.patch(&item, json!({"enabled": false})).await, 200);
    assert_eq!(
        user_auth(&server, &md5_credentials("al", "n3w-pass"), None)
            .await
            .status,
        401
    );
    assert_success(&server.patch(&item, json!({"enabled": true})).await, 200);
    assert_success(&server.delete(&item).await, 200);
    assert_eq!(
        user_auth(&server, &md5_credentials("al", "n3w-pass"), None)
            .await
            .status,
        401
    );
    server.shutdown().await;
}

#[tokio::test]
async fn media_upload_and_download() {
    let server = TestServer::start_with(|config| config.media_max_bytes = 4096).await;
    let media = format!("/v2/accounts/{}/media", server.account_id);
    let created = server.put(&media, json!({"name": "Greeting"})).await;
    let id = created.data()["id"].as_str().unwrap().to_string();
    let raw = format!("{}{media}/{id}/raw", server.base);
    let auth = ("x-auth-token", server.token.as_str());
    let wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();

    let resp = send(
        "PUT",
        &raw,
        &[auth, ("content-type", "text/plain")],
        Some(wav.clone()),
    )
    .await;
    assert_error(&resp, 415, "unsupported_media_type");
    let resp = send("PUT", &raw, &[auth], Some(wav.clone())).await;
    assert_error(&resp, 415, "unsupported_media_type");
    let resp = send(
        "PUT",
        &raw,
        &[auth, ("content-type", "audio/wav")],
        Some(vec![0u8; 5000]),
    )
    .await;
    assert_error(&resp, 413, "request_entity_too_large");
    let resp = send("GET", &raw, &[auth], None).await;
    assert_error(&resp, 404, "bad_identifier");
    let resp = send(
        "PUT",
        &raw,
        &[("content-type", "audio/wav")],
        Some(wav.clone()),
    )
    .await;
    assert_error(&resp, 401, "invalid_credentials");
    let resp = send(
        "PUT",
        &format!("{}{media}/{SOME_ID}/raw", server.base),
        &[auth, ("content-type", "audio/wav")],
        Some(wav.clone()),
    )
    .await;
    assert_error(&resp, 404, "bad_identifier");

    // Upload: 200 with the document (content_type / content_length), the file on disk.
    let resp = send(
        "PUT",
        &raw,
        &[auth, ("content-type", "audio/x-wav")],
        Some(wav.clone()),
    )
    .await;
    assert_success(&resp, 200);
    assert_eq!(resp.data()["content_type"], "audio/wav");
    assert_eq!(resp.data()["content_length"], wav.len());
    assert_eq!(resp.data()["name"], "Greeting");
    let data_dir = server.dir().join("data");
    let wav_path =
        callflowd::documents::media::file_path(&data_dir, &server.account_id, &id, "wav");
    assert_eq!(std::fs::read(&wav_path).unwrap(), wav);
    assert_eq!(
        callflowd::documents::media::stored_file(&data_dir, &server.account_id, &id),
        Some(wav_path.clone())
    );
    let got = send("GET", &raw, &[auth], None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "audio/wav");
    assert_eq!(got.body.as_ref(), wav.as_slice());

    // The upload facts survive a POST of the metadata.
    let mut body = server.get(&format!("{media}/{id}")).await.data().clone();
    body["description"] = json!("new text");
    assert_success(&server.post(&format!("{media}/{id}"), body).await, 200);
    assert_eq!(send("GET", &raw, &[auth], None).await.status, 200);

    // An mp3 replaces the wav.
    let mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    let resp = send(
        "PUT",
        &raw,
        &[auth, ("content-type", "audio/mpeg")],
        Some(mp3.clone()),
    )
    .await;
    assert_success(&resp, 200);
    assert!(!wav_path.exists(), "the old format is removed");
    let got = send("GET", &raw, &[auth], None).await;
    assert_eq!(got.header("content-type"), "audio/mpeg");
    assert_eq!(got.body.as_ref(), mp3.as_slice());

    // Deleting the document removes the file.
    assert_success(&server.delete(&format!("{media}/{id}")).await, 200);
    assert_eq!(
        callflowd::documents::media::stored_file(&data_dir, &server.account_id, &id),
        None
    );
    assert_eq!(send("GET", &raw, &[auth], None).await.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn callflow_metadata_names_referenced_documents() {
    let server = TestServer::start().await;
    let account = server.account_id.clone();
    let create = |segment: &str, doc: Value| {
        let path = format!("/v2/accounts/{account}/{segment}");
        let server = &server;
        async move {
            let resp = server.put(&path, doc).await;
            assert_eq!(resp.status, 201, "{}", resp.json);
            resp.data()["id"].as_str().unwrap().to_string()
        }
    };
    let user = create("users", json!({"first_name": "Ann", "last_name": "Lee"})).await;
    let device = create(
        "devices",
        json!({"name": "Ann's desk", "owner_id": user, "sip": {"username": "2001", "password": "pass2001"}}),
    )
    .await;
    let menu = create("menus", json!({"name": "Main menu"})).await;
    let rule = create(
        "temporal_rules",
        json!({"name": "Office hours", "cycle": "weekly", "wdays": ["monday"]}),
    )
    .await;
    let callflow = server
        .create(json!({
            "name": "Office", "numbers": ["1000"],
            "flow": {"module": "temporal_route", "data": {},
                "children": {
                    rule.as_str(): {"module": "menu", "data": {"id": menu}, "children": {}},
                    "_": {"module": "ring_group", "data": {"endpoints": [
                        {"id": device, "endpoint_type": "device"}]},
                        "children": {"_": {"module": "user", "data": {"id": user}, "children": {}}}}
                }}
        }))
        .await;
    let got = server.get(&server.callflow_path(&callflow)).await;
    let metadata = &got.data()["metadata"];
    assert_eq!(
        metadata[&device],
        json!({"name": "Ann's desk", "pvt_type": "device"})
    );
    assert_eq!(
        metadata[&user],
        json!({"name": "Ann Lee", "pvt_type": "user"})
    );
    assert_eq!(
        metadata[&menu],
        json!({"name": "Main menu", "pvt_type": "menu"})
    );
    assert_eq!(
        metadata[&rule],
        json!({"name": "Office hours", "pvt_type": "temporal_rule"})
    );
    // A device's metadata names its owner.
    let got = server
        .get(&format!("/v2/accounts/{account}/devices/{device}"))
        .await;
    assert_eq!(got.data()["metadata"][&user]["name"], "Ann Lee");
    server.shutdown().await;
}

#[tokio::test]
async fn metaflows_are_validated_by_the_metaflow_rules() {
    let server = TestServer::start().await;
    let devices = format!("/v2/accounts/{}/devices", server.account_id);
    let resp = server
        .put(
            &devices,
            json!({"name": "d", "metaflows": {"binding_digit": "x", "numbers": {"2": {"module": "nope"}}}}),
        )
        .await;
    assert_error(&resp, 400, "validation error");
    assert!(
        resp.data()["metaflows.binding_digit"]["enum"].is_object(),
        "{}",
        resp.json
    );
    assert!(
        resp.data()["metaflows.numbers.2.module"].is_object(),
        "{}",
        resp.json
    );
    let resp = server
        .put(
            &devices,
            json!({"name": "d", "metaflows": {"numbers": {"2": {"module": "hangup"}}}}),
        )
        .await;
    assert_success(&resp, 201);

    // The account's metaflows.
    let path = format!("/v2/accounts/{}/metaflows", server.account_id);
    let empty = server.get(&path).await;
    assert_success(&empty, 200);
    assert_eq!(empty.data(), &json!({}));
    let bad = server
        .post(
            &path,
            json!({"listen_on": "nobody", "numbers": {"x1": {"module": "hangup"}}}),
        )
        .await;
    assert_error(&bad, 400, "validation error");
    assert!(bad.data()["listen_on"]["enum"].is_object(), "{}", bad.json);
    assert!(
        bad.data()["numbers.x1"]["pattern"].is_object(),
        "{}",
        bad.json
    );
    let set = server
        .post(
            &path,
            json!({"listen_on": "both", "numbers": {"2": {"module": "hangup"}},
                   "patterns": {"^3(\\d+)$": {"module": "transfer", "data": {}}}}),
        )
        .await;
    assert_success(&set, 200);
    assert_eq!(set.data()["binding_digit"], "*");
    assert!(set.data().get("id").is_none());
    let got = server.get(&path).await;
    assert_eq!(got.data()["listen_on"], "both");
    {
        use callflowd::store::StoreRead;
        let stored = server
            .service
            .store
            .document(&server.account_id, "metaflows", &server.account_id)
            .unwrap()
            .expect("the engine finds the account metaflows");
        assert_eq!(stored["numbers"]["2"]["module"], "hangup");
    }
    assert_error(&server.put(&path, json!({})).await, 405, "invalid_method");
    assert_success(&server.delete(&path).await, 200);
    assert_eq!(server.get(&path).await.data(), &json!({}));
    server.shutdown().await;
}

#[tokio::test]
async fn openapi_and_schemas_cover_the_collections() {
    let server = TestServer::start().await;
    let doc = send(
        "GET",
        &format!("{}/v2/openapi.json", server.base),
        &[],
        None,
    )
    .await;
    let paths = &doc.json["paths"];
    for segment in [
        "devices",
        "users",
        "groups",
        "menus",
        "temporal_rules",
        "temporal_rules_sets",
        "temporal_rule_sets",
        "resources",
        "conferences",
        "media",
        "lists",
    ] {
        let base = format!("/v2/accounts/{{account_id}}/{segment}");
        assert!(paths[&base]["put"].is_object(), "{segment}");
        assert!(
            paths[format!("{base}/{{id}}")]["patch"].is_object(),
            "{segment}"
        );
    }
    let upload = &paths["/v2/accounts/{account_id}/media/{id}/raw"]["put"];
    assert!(upload["requestBody"]["content"]["audio/wav"].is_object());
    assert!(upload["responses"]["415"].is_object());
    assert!(paths["/directory"]["post"]["responses"]["403"].is_object());
    assert!(paths["/v2/accounts/{account_id}/metaflows"]["post"].is_object());
    let schemas = &doc.json["components"]["schemas"];
    assert!(schemas["devices"]["properties"]["sip"].is_object());
    assert!(schemas["metaflows"].is_object());
    assert!(!doc.json.to_string().contains("#/definitions/"));
    let names = send("GET", &format!("{}/v2/schemas", server.base), &[], None).await;
    assert!(names.data().as_array().unwrap().contains(&json!("devices")));
    let users = send(
        "GET",
        &format!("{}/v2/schemas/users", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(users.data()["required"], json!(["first_name", "last_name"]));
    server.shutdown().await;
}

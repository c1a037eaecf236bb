//! Black-box tests of the callflow routes over real HTTP: every route and status code, the
//! envelopes and error shapes, PATCH semantics, uniqueness (including a race), limits,
//! revisions, listing, schemas, OpenAPI and metrics.

mod common;

use common::{TestServer, callflow, send};
use serde_json::{Value, json};

fn assert_success_envelope(resp: &common::Resp) {
    assert_eq!(resp.header("content-type"), "application/json");
    assert_eq!(resp.json["status"], "success", "{}", resp.json);
    for key in [
        "auth_token",
        "request_id",
        "revision",
        "data",
        "timestamp",
        "version",
        "node",
    ] {
        assert!(
            resp.json.get(key).is_some(),
            "missing {key} in {}",
            resp.json
        );
    }
    assert!(!resp.header("x-request-id").is_empty());
}

fn assert_error_envelope(resp: &common::Resp, status: u16, message: &str) {
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
    assert!(resp.json["data"].is_object());
}

#[tokio::test]
async fn create_get_replace_delete_lifecycle() {
    let server = TestServer::start().await;
    let mut doc = callflow(&["1000"]);
    doc["ui_metadata"] = json!({"origin": "test", "nested": {"x": [1, 2]}});
    doc["contact_list"] = json!({"exclude": false});
    doc["_id"] = json!("client-chosen");
    doc["pvt_type"] = json!("hacked");
    doc["_rev"] = json!("99-x");
    doc["id"] = json!("ignored");

    // Create: 201, envelope, Location, ETag, id, defaults, unknown keys kept, private keys dropped.
    let created = server.put(&server.callflows(), doc).await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_success_envelope(&created);
    let id = created.data()["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(created.header("location").ends_with(&id));
    let revision = created.json["revision"].as_str().unwrap().to_string();
    assert!(revision.starts_with("1-"));
    assert_eq!(created.header("etag"), format!("\"{revision}\""));
    assert_eq!(created.data()["ui_metadata"]["nested"]["x"], json!([1, 2]));
    assert_eq!(created.data()["patterns"], json!([]));
    assert_eq!(
        created.data()["flow"]["children"]["_"]["children"]["_"]["data"]["cause"],
        "NORMAL_CLEARING",
        "module schema defaults are stored"
    );
    for private in ["_id", "_rev", "pvt_type", "pvt_created", "pvt_account_id"] {
        assert!(created.data().get(private).is_none(), "{private} leaked");
    }

    // Get: the document + id + metadata, same revision.
    let fetched = server.get(&server.callflow_path(&id)).await;
    assert_eq!(fetched.status, 200);
    assert_success_envelope(&fetched);
    assert_eq!(fetched.json["revision"], revision.as_str());
    assert_eq!(fetched.data()["id"], id.as_str());
    assert!(fetched.data()["metadata"].is_object());
    assert_eq!(fetched.data()["contact_list"], json!({"exclude": false}));
    assert!(fetched.data().get("pvt_type").is_none());

    // Replace: POST carries id and what GET returned; fields absent from the body are gone.
    let mut body = fetched.data().clone();
    body["name"] = json!("renamed");
    body.as_object_mut().unwrap().remove("contact_list");
    let replaced = server.post(&server.callflow_path(&id), body).await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(replaced.data()["name"], "renamed");
    assert!(replaced.data().get("contact_list").is_none());
    assert!(
        replaced.data().get("metadata").is_none(),
        "metadata is computed, not stored"
    );
    assert!(
        replaced.json["revision"]
            .as_str()
            .unwrap()
            .starts_with("2-")
    );

    // Delete: 200 with the document and _read_only.deleted, then 404 and gone from the list.
    let deleted = server
        .request(
            "DELETE",
            &server.callflow_path(&id),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.json);
    assert_success_envelope(&deleted);
    assert_eq!(deleted.data()["_read_only"], json!({"deleted": true}));
    assert_eq!(deleted.data()["name"], "renamed");
    let gone = server.get(&server.callflow_path(&id)).await;
    assert_error_envelope(&gone, 404, "bad_identifier");
    assert_eq!(gone.data()["cause"], id.as_str());
    let list = server.get(&server.callflows()).await;
    assert_eq!(list.data(), &json!([]));

    // The number is free again.
    server.create(callflow(&["1000"])).await;
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_ids_routes_and_verbs() {
    let server = TestServer::start().await;
    let missing = server.callflow_path("0123456789abcdef0123456789abcdef");
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        let body =
            (method == "POST" || method == "PATCH").then(|| json!({"data": callflow(&["1"])}));
        let resp = server.request(method, &missing, body).await;
        assert_error_envelope(&resp, 404, "bad_identifier");
    }
    // Ids with odd characters are simply unknown.
    let resp = server.get(&server.callflow_path("not..an-id%2F")).await;
    assert_error_envelope(&resp, 404, "bad_identifier");

    let resp = server.get("/v2/nothing/here").await;
    assert_error_envelope(&resp, 404, "not_found");

    let id = server.create(callflow(&["2000"])).await;
    for (method, path) in [
        ("POST", server.callflows()),
        ("PATCH", server.callflows()),
        ("DELETE", server.callflows()),
        ("PUT", server.callflow_path(&id)),
        ("OPTIONS", server.callflow_path(&id)),
        ("GET", "/v2/api_auth".to_string()),
    ] {
        let resp = server.request(method, &path, None).await;
        assert_error_envelope(&resp, 405, "invalid_method");
    }
    // GET with a JSON content type and an empty body, and an unknown query parameter.
    let resp = server
        .get(&format!("{}?_=1712345678901", server.callflow_path(&id)))
        .await;
    assert_eq!(resp.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn patch_semantics() {
    let server = TestServer::start().await;
    let mut doc = callflow(&["3000"]);
    doc["ui_metadata"] = json!({"keep": 1, "drop": 2});
    let id = server.create(doc).await;
    let path = server.callflow_path(&id);

    // Name only: numbers and flow stay.
    let resp = server.patch(&path, json!({"name": "patched"})).await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    assert_eq!(resp.data()["name"], "patched");
    assert_eq!(resp.data()["numbers"], json!(["3000"]));
    assert_eq!(resp.data()["flow"]["module"], "answer");
    assert!(resp.json["revision"].as_str().unwrap().starts_with("2-"));

    // Nested flow merge: change the play node's media only; its children stay.
    let resp = server
        .patch(
            &path,
            json!({"flow": {"children": {"_": {"data": {"id": "tone_stream://%(100,0,300)"}}}}}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    let play = &resp.data()["flow"]["children"]["_"];
    assert_eq!(play["module"], "play");
    assert_eq!(play["data"]["id"], "tone_stream://%(100,0,300)");
    assert_eq!(play["children"]["_"]["module"], "hangup");

    // null deletes a key (also nested).
    let resp = server
        .patch(&path, json!({"ui_metadata": {"drop": null}, "name": null}))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.data()["ui_metadata"], json!({"keep": 1}));
    assert!(resp.data().get("name").is_none());

    // The merged result is validated as a whole.
    let resp = server
        .patch(
            &path,
            json!({"flow": {"children": {"_": {"module": null}}}}),
        )
        .await;
    assert_error_envelope(&resp, 400, "validation error");
    assert_eq!(
        resp.data(),
        &json!({"flow.children._.module": {"required": {"message": "Field is required but missing"}}})
    );
    let resp = server.patch(&path, json!({"numbers": []})).await;
    assert_error_envelope(&resp, 400, "validation error");
    assert!(resp.data()["numbers"]["required"].is_object());

    // Private keys in a PATCH are ignored.
    let resp = server
        .patch(&path, json!({"pvt_deleted": true, "_rev": "1-x"}))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(server.get(&path).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn validation_error_shapes() {
    let server = TestServer::start().await;
    let cases = [
        (
            json!({"numbers": ["1"], "flow": {"module": "answer", "data": {}, "children": {"_": {"data": {}}}}}),
            json!({"flow.children._.module": {"required": {"message": "Field is required but missing"}}}),
        ),
        (
            json!({"name": "nothing"}),
            json!({"numbers": {"required": {"message": "Callflows must be assigned at least one number or pattern"}}}),
        ),
    ];
    for (doc, expected) in cases {
        let resp = server.put(&server.callflows(), doc).await;
        assert_error_envelope(&resp, 400, "validation error");
        assert_eq!(resp.data(), &expected);
    }

    let checks: Vec<(Value, &str, &str)> = vec![
        (json!({"numbers": "1000"}), "numbers", "type"),
        (json!({"numbers": [""]}), "numbers.0", "minLength"),
        (
            json!({"numbers": ["1".repeat(37)]}),
            "numbers.0",
            "maxLength",
        ),
        (json!({"patterns": [""]}), "patterns.0", "minLength"),
        (json!({"patterns": ["^(unclosed"]}), "patterns.0", "pattern"),
        (
            json!({"numbers": ["1"], "featurecode": {"name": "", "number": "1"}}),
            "featurecode.name",
            "minLength",
        ),
        (
            json!({"numbers": ["1"], "featurecode": {"number": "1".repeat(31)}}),
            "featurecode.number",
            "maxLength",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "answer"}}),
            "flow.data",
            "required",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "answer", "data": []}}),
            "flow.data",
            "type",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "", "data": {}}}),
            "flow.module",
            "minLength",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "x".repeat(65), "data": {}}}),
            "flow.module",
            "maxLength",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "teleport", "data": {}}}),
            "flow.module",
            "enum",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "play", "data": {}}}),
            "flow.data.id",
            "required",
        ),
        (
            json!({"numbers": ["1"], "flow": {"module": "play", "data": {"id": 5}}}),
            "flow.data.id",
            "type",
        ),
        (
            json!({"numbers": ["1"], "metaflow": {"binding_digit": "x"}}),
            "metaflow.binding_digit",
            "enum",
        ),
        (
            json!({"numbers": ["1"], "metaflow": {"digit_timeout": "slow"}}),
            "metaflow.digit_timeout",
            "type",
        ),
        (
            json!({"numbers": ["1"], "metaflow": {"listen_on": "all"}}),
            "metaflow.listen_on",
            "enum",
        ),
        (
            json!({"numbers": ["1"], "metaflow": {"numbers": {"12a": {"module": "hangup"}}}}),
            "metaflow.numbers.12a",
            "pattern",
        ),
        (
            json!({"numbers": ["1"], "metaflow": {"numbers": {"12": {"data": {}}}}}),
            "metaflow.numbers.12.module",
            "required",
        ),
        (
            json!({"numbers": ["1"], "metaflow": {"patterns": {"(": {"module": "hangup"}}}}),
            "metaflow.patterns.(",
            "pattern",
        ),
    ];
    for (doc, path, rule) in checks {
        let resp = server.put(&server.callflows(), doc.clone()).await;
        assert_error_envelope(&resp, 400, "validation error");
        assert!(
            resp.data()[path][rule]["message"].is_string(),
            "{doc} -> expected {path}.{rule}, got {}",
            resp.data()
        );
    }

    // A valid metaflow gets its default binding digit.
    let resp = server
        .put(
            &server.callflows(),
            json!({"numbers": ["77"], "metaflow": {"numbers": {"1": {"module": "hangup"}}}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.json);
    assert_eq!(resp.data()["metaflow"]["binding_digit"], "*");

    // Bad JSON and non-object bodies.
    let url = format!("{}{}", server.base, server.callflows());
    let headers = [
        ("x-auth-token", server.token.as_str()),
        ("content-type", "application/json"),
    ];
    let resp = send("PUT", &url, &headers, Some(b"{\"data\": {".to_vec())).await;
    assert_error_envelope(&resp, 400, "validation error");
    assert_eq!(resp.data()["json"]["invalid"]["target"], "body");
    assert!(resp.data()["json"]["invalid"]["message"].is_string());
    let resp = send("PUT", &url, &headers, Some(b"[1,2]".to_vec())).await;
    assert_error_envelope(&resp, 400, "validation error");
    let resp = server
        .request("PUT", &server.callflows(), Some(json!({"data": "text"})))
        .await;
    assert_error_envelope(&resp, 400, "validation error");
    assert!(resp.data()["data"]["type"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn uniqueness_of_numbers_and_patterns() {
    let server = TestServer::start().await;
    let mut doc = callflow(&["4000", "4001"]);
    doc["name"] = json!("Main");
    doc["patterns"] = json!(["^\\*3([0-9]*)$"]);
    let id = server.create(doc).await;

    let resp = server.put(&server.callflows(), callflow(&["4001"])).await;
    assert_error_envelope(&resp, 400, "validation error");
    assert_eq!(
        resp.data(),
        &json!({"numbers": {"unique": {"message": format!("Number 4001 exists in callflow {id} Main"), "cause": "4001"}}})
    );
    let resp = server
        .put(&server.callflows(), json!({"patterns": ["^\\*3([0-9]*)$"]}))
        .await;
    assert_error_envelope(&resp, 400, "validation error");
    assert_eq!(
        resp.data()["patterns"]["unique"]["message"],
        format!("Pattern ^\\*3([0-9]*)$ exists in callflow {id} Main")
    );

    // Updating the owner with its own numbers is fine; moving a number frees the old one.
    let resp = server
        .patch(
            &server.callflow_path(&id),
            json!({"numbers": ["4000", "4002"]}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    server.create(callflow(&["4001"])).await;
    let resp = server
        .post(&server.callflow_path(&id), callflow(&["4001"]))
        .await;
    assert_eq!(resp.status, 400);
    assert!(resp.data()["numbers"]["unique"].is_object());

    // The routing index follows every committed write.
    let routing = callflowd::store::StoreRead::routing(server.service.store.as_ref()).clone();
    assert_eq!(
        &*routing
            .lookup(&server.account_id, "4002")
            .unwrap()
            .callflow_id,
        id.as_str()
    );
    assert!(routing.lookup(&server.account_id, "*355").is_some());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_number_exactly_one_wins() {
    let server = std::sync::Arc::new(TestServer::start().await);
    for round in 0..5 {
        let number = format!("55{round}");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let server = server.clone();
                let number = number.clone();
                tokio::spawn(
                    async move { server.put(&server.callflows(), callflow(&[&number])).await },
                )
            })
            .collect();
        let mut created = 0;
        let mut refused = 0;
        for task in tasks {
            let resp = task.await.unwrap();
            match resp.status {
                201 => created += 1,
                400 => {
                    assert!(
                        resp.data()["numbers"]["unique"].is_object(),
                        "{}",
                        resp.json
                    );
                    refused += 1;
                }
                other => panic!("unexpected {other}: {}", resp.json),
            }
        }
        assert_eq!((created, refused), (1, 15), "round {round}");
    }
    let list = server
        .get(&format!("{}?paginate=false", server.callflows()))
        .await;
    assert_eq!(list.data().as_array().unwrap().len(), 5);
    std::sync::Arc::into_inner(server).unwrap().shutdown().await;
}

#[tokio::test]
async fn body_and_depth_limits() {
    let server = TestServer::start().await;
    let url = format!("{}{}", server.base, server.callflows());
    let headers = [
        ("x-auth-token", server.token.as_str()),
        ("content-type", "application/json"),
    ];

    // > 1 MiB -> 413 with the envelope.
    let mut big = callflow(&["6000"]);
    big["blob"] = json!("x".repeat(1024 * 1024));
    let resp = send(
        "PUT",
        &url,
        &headers,
        Some(json!({"data": big}).to_string().into_bytes()),
    )
    .await;
    assert_error_envelope(&resp, 413, "request_entity_too_large");

    // 100,000 levels of nesting -> 400, and the server is still up.
    let deep = format!(
        "{{\"data\":{}1{}}}",
        "{\"a\":".repeat(100_000),
        "}".repeat(100_000)
    );
    assert!(deep.len() < 1024 * 1024);
    let resp = send("PUT", &url, &headers, Some(deep.into_bytes())).await;
    assert_error_envelope(&resp, 400, "validation error");
    assert!(
        resp.data()["json"]["invalid"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion")
    );
    let deep_arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let resp = send("PUT", &url, &headers, Some(deep_arrays.into_bytes())).await;
    assert_error_envelope(&resp, 400, "validation error");

    // flow deeper than 64 levels -> 400; 64 levels -> fine.
    let nest = |levels: usize| {
        let mut flow = json!({"module": "answer", "data": {}});
        for _ in 1..levels {
            flow = json!({"module": "answer", "data": {}, "children": {"_": flow}});
        }
        flow
    };
    let resp = server
        .put(
            &server.callflows(),
            json!({"numbers": ["6001"], "flow": nest(65)}),
        )
        .await;
    assert_error_envelope(&resp, 400, "validation error");
    assert!(
        resp.data()["flow"]["maxDepth"].is_object(),
        "{}",
        resp.data()
    );
    let resp = server
        .put(
            &server.callflows(),
            json!({"numbers": ["6001"], "flow": nest(64)}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.json);

    // more than 5,000 nodes -> 400.
    let children: serde_json::Map<String, Value> = (0..5000)
        .map(|i| (i.to_string(), json!({"module": "hangup", "data": {}})))
        .collect();
    let resp = server
        .put(&server.callflows(), json!({"numbers": ["6002"], "flow": {"module": "answer", "data": {}, "children": children}}))
        .await;
    assert_error_envelope(&resp, 400, "validation error");
    assert!(resp.data()["flow"]["maxNodes"].is_object());

    assert_eq!(server.get(&server.callflows()).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn revisions_and_if_match() {
    let server = TestServer::start().await;
    let id = server.create(callflow(&["7000"])).await;
    let path = server.callflow_path(&id);
    let current = server.get(&path).await;
    let etag = current.header("etag").to_string();
    assert!(etag.starts_with("\"1-"));

    let resp = server
        .request_with(
            "PATCH",
            &path,
            &[("if-match", "\"1-stale\"")],
            Some(json!({"data": {"name": "x"}})),
        )
        .await;
    assert_error_envelope(&resp, 409, "datastore_conflict");
    let resp = server
        .request_with(
            "PATCH",
            &path,
            &[("if-match", &etag)],
            Some(json!({"data": {"name": "x"}})),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    let second = resp.header("etag").to_string();
    assert!(second.starts_with("\"2-"));
    // The old ETag is now stale, for POST and DELETE too.
    let resp = server
        .request_with(
            "POST",
            &path,
            &[("if-match", &etag)],
            Some(json!({"data": callflow(&["7000"])})),
        )
        .await;
    assert_eq!(resp.status, 409);
    let resp = server
        .request_with("DELETE", &path, &[("if-match", &etag)], None)
        .await;
    assert_eq!(resp.status, 409);
    // Without If-Match nothing is required.
    let resp = server.post(&path, callflow(&["7000"])).await;
    assert_eq!(resp.status, 200);
    assert!(resp.json["revision"].as_str().unwrap().starts_with("3-"));
    let resp = server
        .request_with("DELETE", &path, &[("if-match", resp.header("etag"))], None)
        .await;
    assert_eq!(resp.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_walk_over_120_documents() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move { server.create(callflow(&[&format!("8{i:03}")])).await })
        })
        .collect();
    let mut expected = Vec::new();
    for task in tasks {
        expected.push(task.await.unwrap());
    }
    expected.sort();

    // Default page size is 50.
    let first = server.get(&server.callflows()).await;
    assert_eq!(first.json["page_size"], 50);
    assert!(first.json["next_start_key"].is_string());

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let path = match &start {
            Some(key) => format!("{}?page_size=50&start_key={key}", server.callflows()),
            None => format!("{}?page_size=50", server.callflows()),
        };
        let page = server.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.json);
        let items = page.data().as_array().unwrap();
        assert_eq!(page.json["page_size"], items.len());
        if let Some(key) = &start {
            assert_eq!(page.json["start_key"], key.as_str());
        }
        for item in items {
            assert!(item.get("flow").is_none(), "summaries carry no flow");
            for key in [
                "id",
                "name",
                "numbers",
                "patterns",
                "featurecode",
                "modules",
                "flags",
            ] {
                assert!(item.get(key).is_some(), "summary lacks {key}");
            }
            assert_eq!(item["featurecode"], false);
            assert_eq!(item["modules"], json!(["answer", "play", "hangup"]));
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        sizes.push(items.len());
        match page.json.get("next_start_key").and_then(Value::as_str) {
            Some(next) => start = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, vec![50, 50, 20]);
    assert_eq!(seen, expected, "ascending by id, no gaps or repeats");

    let all = server
        .get(&format!("{}?paginate=false", server.callflows()))
        .await;
    assert_eq!(all.data().as_array().unwrap().len(), 120);
    for key in ["page_size", "start_key", "next_start_key"] {
        assert!(
            all.json.get(key).is_none(),
            "{key} present with paginate=false"
        );
    }
    std::sync::Arc::into_inner(server).unwrap().shutdown().await;
}

#[tokio::test]
async fn listing_filters() {
    let server = TestServer::start().await;
    let mut a = callflow(&["9000"]);
    a["type"] = json!("mainUserCallflow");
    a["owner_id"] = json!("u1");
    let a = server.create(a).await;
    let mut b = callflow(&["no_match"]);
    b["type"] = json!("baseGroup");
    b["featurecode"] = json!({"name": "park", "number": "3"});
    let b = server.create(b).await;
    let c = server
        .create(json!({"patterns": ["^9\\d+$"], "name": "pat"}))
        .await;

    let ids = |resp: &common::Resp| -> Vec<String> {
        let mut ids: Vec<String> = resp
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    let cf = server.callflows();
    assert_eq!(
        ids(&server
            .get(&format!("{cf}?filter_type=mainUserCallflow"))
            .await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&server
            .get(&format!(
                "{cf}?filter_type=mainUserCallflow&filter_type=baseGroup"
            ))
            .await),
        sorted(vec![&a, &b])
    );
    assert_eq!(
        ids(&server
            .get(&format!("{cf}?filter_not_numbers=no_match"))
            .await),
        sorted(vec![&a, &c])
    );
    assert_eq!(
        ids(&server.get(&format!("{cf}?filter_owner_id=u1&_=123")).await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&server.get(&format!("{cf}?has_key=featurecode.name")).await),
        vec![b.clone()]
    );
    assert_eq!(
        ids(&server.get(&format!("{cf}?key_missing=flow")).await),
        vec![c.clone()]
    );
    assert_eq!(
        ids(&server.get(&format!("{cf}?filter_id={b}")).await),
        vec![b.clone()]
    );

    let list = server.get(&format!("{cf}?filter_id={b}")).await;
    assert_eq!(
        list.data()[0]["featurecode"],
        json!({"name": "park", "number": "3"})
    );
    assert_eq!(list.data()[0]["type"], "baseGroup");

    let resp = server.get(&format!("{cf}?page_size=0")).await;
    assert_error_envelope(&resp, 400, "validation error");
    let resp = server.get(&format!("{cf}?start_key=!!")).await;
    assert_error_envelope(&resp, 400, "validation error");
    server.shutdown().await;
}

#[tokio::test]
async fn metadata_lists_referenced_documents() {
    let server = TestServer::start().await;
    let target = server
        .create(json!({"name": "Target", "numbers": ["1234"]}))
        .await;
    // `play`'s data.id is a referenced id as far as Crossbar's metadata is concerned.
    let id = server
        .create(json!({"numbers": ["1235"], "flow": {"module": "play", "data": {"id": target}}}))
        .await;
    let resp = server.get(&server.callflow_path(&id)).await;
    assert_eq!(
        resp.data()["metadata"],
        json!({target.clone(): {"name": "Target", "numbers": ["1234"], "pvt_type": "callflow"}})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn schemas_openapi_metrics_and_verb_tunnelling() {
    let server = TestServer::start().await;
    let resp = send(
        "GET",
        &format!("{}/v2/schemas/callflows", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(resp.data()["definitions"]["callflows.action"]["properties"]["module"].is_object());
    let resp = send(
        "GET",
        &format!("{}/v2/schemas/callflows.play", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(resp.data()["properties"]["id"].is_object());
    let resp = send(
        "GET",
        &format!("{}/v2/schemas/callflows.nope", server.base),
        &[],
        None,
    )
    .await;
    assert_error_envelope(&resp, 404, "bad_identifier");
    let resp = send("GET", &format!("{}/v2/schemas", server.base), &[], None).await;
    assert!(
        resp.data()
            .as_array()
            .unwrap()
            .contains(&json!("callflows.hangup"))
    );

    let resp = send(
        "GET",
        &format!("{}/v2/openapi.json", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), "application/json");
    assert_eq!(resp.json["openapi"], "3.1.0");
    let item = &resp.json["paths"]["/v2/accounts/{account_id}/callflows/{id}"];
    for verb in ["get", "post", "patch", "delete"] {
        assert!(item[verb].is_object(), "{verb} undocumented");
    }
    assert!(
        resp.json["paths"]["/v2/accounts/{account_id}/callflows"]["put"]["requestBody"].is_object()
    );
    assert!(resp.json["components"]["schemas"]["callflows.action"].is_object());

    // Verb tunnelling: POST ?verb=PATCH and {"verb":"PATCH"}.
    let id = server.create(callflow(&["1300"])).await;
    let path = server.callflow_path(&id);
    let resp = server
        .request(
            "POST",
            &format!("{path}?verb=PATCH"),
            Some(json!({"data": {"name": "tunnelled"}})),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    assert_eq!(resp.data()["numbers"], json!(["1300"]));
    let resp = server
        .request(
            "POST",
            &path,
            Some(json!({"verb": "PATCH", "data": {"name": "again"}})),
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.data()["name"], "again");
    assert_eq!(resp.data()["numbers"], json!(["1300"]));

    let resp = send("GET", &format!("{}/metrics", server.base), &[], None).await;
    assert_eq!(resp.status, 200);
    let text = String::from_utf8_lossy(&resp.body);
    assert!(text.contains("callflowd_http_requests_total"), "{text}");
    server.shutdown().await;
}

//! Durability: a 2xx means flushed to disk and indexed. A child `callflowd serve` is SIGKILLed
//! right after its replies; a new process on the same data directory must have everything, with
//! the routing/uniqueness indexes rebuilt.

mod common;

use common::process::ServeProcess;
use common::{api_auth, callflow, send};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_sigkill_right_after_2xx() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let first = ServeProcess::spawn(&data, &[]).await;
    let api_key = first
        .api_key
        .clone()
        .expect("first start prints the API key");
    let token = api_auth(&first.base, &api_key).await;
    let account_id = {
        let resp = send(
            "PUT",
            &format!("{}/v2/api_auth", first.base),
            &[],
            Some(
                json!({"data": {"api_key": api_key}})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
        resp.data()["account_id"].as_str().unwrap().to_string()
    };
    let cf = format!("{}/v2/accounts/{account_id}/callflows", first.base);
    let headers = [
        ("x-auth-token", token.as_str()),
        ("content-type", "application/json"),
    ];

    // A burst of concurrent creates, an update and a delete; SIGKILL as soon as the last reply
    // is in.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = cf.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"data": callflow(&[&format!("20{i:02}")])})
                .to_string()
                .into_bytes();
            send("PUT", &url, &[("x-auth-token", &token)], Some(body)).await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 201, "{}", resp.json);
        ids.push(resp.data()["id"].as_str().unwrap().to_string());
    }
    let patched = send(
        "PATCH",
        &format!("{cf}/{}", ids[0]),
        &headers,
        Some(br#"{"data":{"name":"patched","numbers":["3000"]}}"#.to_vec()),
    )
    .await;
    assert_eq!(patched.status, 200);
    let deleted = send("DELETE", &format!("{cf}/{}", ids[1]), &headers, None).await;
    assert_eq!(deleted.status, 200);
    first.kill().await;

    // A new process on the same directory: no new bootstrap, same key and data.
    let second = ServeProcess::spawn(&data, &[]).await;
    assert!(second.api_key.is_none(), "bootstrap happens only once");
    let token = api_auth(&second.base, &api_key).await;
    let cf = format!("{}/v2/accounts/{account_id}/callflows", second.base);
    let headers = [
        ("x-auth-token", token.as_str()),
        ("content-type", "application/json"),
    ];
    let list = send("GET", &format!("{cf}?paginate=false"), &headers, None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.data().as_array().unwrap().len(), 19);
    let got = send("GET", &format!("{cf}/{}", ids[0]), &headers, None).await;
    assert_eq!(got.data()["name"], "patched");
    assert_eq!(
        send("GET", &format!("{cf}/{}", ids[1]), &headers, None)
            .await
            .status,
        404
    );
    // The uniqueness index came back with the documents...
    let dup = send(
        "PUT",
        &cf,
        &headers,
        Some(
            json!({"data": callflow(&["3000"])})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(dup.status, 400, "{}", dup.json);
    assert!(
        dup.data()["numbers"]["unique"]["message"]
            .as_str()
            .unwrap()
            .contains(&ids[0])
    );
    // ...and freed numbers stayed free.
    for number in ["2000", "2001"] {
        let resp = send(
            "PUT",
            &cf,
            &headers,
            Some(
                json!({"data": callflow(&[number])})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
        assert_eq!(resp.status, 201, "{number}: {}", resp.json);
    }
    second.kill().await;
}

#[tokio::test]
async fn graceful_restart_rebuilds_the_routing_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = callflowd::config::Config::ephemeral(dir.path().join("data"));
    config.log_level = "warn".into();
    let service = callflowd::service::start(config.clone()).await.unwrap();
    let boot = service.bootstrap.clone().unwrap();
    let base = service.api_url();
    let token = api_auth(&base, &boot.api_key).await;
    let cf = format!("{base}/v2/accounts/{}/callflows", boot.account_id);
    let body = json!({"data": {"numbers": ["5000"], "patterns": ["^\\*7(\\d+)$"], "flow": {"module": "answer", "data": {}}}});
    let resp = send(
        "PUT",
        &cf,
        &[("x-auth-token", &token)],
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(resp.status, 201);
    let id = resp.data()["id"].as_str().unwrap().to_string();
    service.shutdown().await.unwrap();

    let service = callflowd::service::start(config).await.unwrap();
    assert!(service.bootstrap.is_none());
    let routing = callflowd::store::StoreRead::routing(service.store.as_ref()).clone();
    assert_eq!(
        &*routing
            .lookup(&boot.account_id, "5000")
            .unwrap()
            .callflow_id,
        id.as_str()
    );
    let by_pattern = routing.lookup(&boot.account_id, "*742").unwrap();
    assert_eq!(by_pattern.capture_group.as_deref(), Some("42"));
    assert_eq!(
        service.engine.store.routing().counts(&boot.account_id),
        (1, 1)
    );
    service.shutdown().await.unwrap();
}

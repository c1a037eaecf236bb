//! Soak (issue 7, part 8), the CI form: a `callflowd serve` child takes 200 concurrent calls
//! (answer, a 2 s prompt, hangup; the load generator plays FreeSWITCH) while API writes
//! (create / replace / patch / delete callflows, ~20/s) go on, for `SOAK_SECONDS` (default
//! 120). The server's own RSS is sampled after a warm-up and must stay flat (±10% between the
//! medians of the first and the last third of the samples); no call may fail and no API write may error.
//!
//! Knobs: `SOAK_SECONDS`, `SOAK_CALLS` (concurrency, 200), `SOAK_WRITES_PER_SEC` (20). The
//! 30-minute form is `bench/soak.sh` (release build).

mod common;

use callflowd::fakeswitch::CallScript;
use callflowd::loadgen::{LoadOptions, Pace};
use common::process::{ServeProcess, rss_kib};
use common::{api_auth, send};
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[derive(Default)]
struct ApiFigures {
    writes: AtomicU64,
    errors: AtomicU64,
}

/// Create / replace / patch / delete at `per_sec`, over a bounded set of callflows (so the
/// database stays about the same size: RSS measures leaks, not data).
async fn api_writes(
    base: String,
    account: String,
    token: String,
    per_sec: u64,
    stop: Arc<AtomicBool>,
    figures: Arc<ApiFigures>,
) {
    let url = format!("{base}/v2/accounts/{account}/callflows");
    let headers = [
        ("x-auth-token", token.as_str()),
        ("content-type", "application/json"),
    ];
    let mut live: Vec<String> = Vec::new();
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_sec.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let flow = json!({"module": "answer", "data": {}, "children": {"_": {
        "module": "play", "data": {"id": "tone_stream://%(100,0,350)"}, "children": {"_": {
        "module": "hangup", "data": {}}}}}});
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq += 1;
        let roll = rand::thread_rng().gen_range(0..100);
        let doc = json!({"name": format!("soak {seq}"), "numbers": [format!("55{seq:08}")],
                         "flow": flow});
        let (method, target, body) = if live.len() < 20 || (roll < 10 && live.len() < 100) {
            ("PUT", url.clone(), Some(json!({"data": doc})))
        } else {
            let i = rand::thread_rng().gen_range(0..live.len());
            let target = format!("{url}/{}", live[i]);
            if roll < 20 {
                let id = live.swap_remove(i);
                ("DELETE", format!("{url}/{id}"), None)
            } else if roll < 55 {
                ("POST", target, Some(json!({"data": doc})))
            } else {
                (
                    "PATCH",
                    target,
                    Some(json!({"data": {"name": format!("patched {seq}")}})),
                )
            }
        };
        let reply = tokio::time::timeout(
            Duration::from_secs(30),
            send_checked(method, &target, &headers, body),
        )
        .await;
        figures.writes.fetch_add(1, Ordering::Relaxed);
        match reply {
            Ok(Some((status, json))) if (200..300).contains(&status) => {
                if method == "PUT"
                    && let Some(id) = json["data"]["id"].as_str()
                {
                    live.push(id.to_string());
                }
            }
            Ok(Some((status, json))) => {
                figures.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: {method} {target} -> {status}: {json}");
            }
            _ => {
                figures.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: {method} {target}: no reply");
            }
        }
    }
}

/// `common::send` panics on transport errors; the soak counts them instead.
async fn send_checked(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let method = method.to_string();
    let url = url.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let task = tokio::spawn(async move {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let resp = send(
            &method,
            &url,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await;
        (resp.status, resp.json)
    });
    task.await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_flat_under_calls_and_writes() {
    let seconds = env_or("SOAK_SECONDS", 120);
    let calls = env_or("SOAK_CALLS", 200) as usize;
    let per_sec = env_or("SOAK_WRITES_PER_SEC", 20);
    // Warm-up: a quarter of the run, at most a minute; then a sample every 5 s (10 s when long).
    let warm_up = Duration::from_secs((seconds / 4).clamp(5, 60));
    let every = Duration::from_secs(if seconds >= 600 { 10 } else { 5 });
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(&dir.path().join("data"), &[]).await;
    let pid = server.pid();
    let account = server.account_id.clone().expect("account");
    let token = api_auth(&server.base, server.api_key.as_deref().expect("key")).await;
    let created = send(
        "PUT",
        &format!("{}/v2/accounts/{account}/callflows", server.base),
        &[("x-auth-token", &token)],
        Some(
            json!({"data": {"name": "soak", "numbers": ["1000"], "flow": {
                "module": "answer", "data": {}, "children": {"_": {
                "module": "play", "data": {"id": "tone_stream://%(400,200,440)"}, "children": {"_": {
                "module": "hangup", "data": {}}}}}}}})
            .to_string()
            .into_bytes(),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    println!(
        "soak: {seconds} s, {calls} concurrent calls (2 s prompt each), {per_sec} API writes/s, server pid {pid}, RSS {} KiB at start",
        rss_kib(pid).unwrap_or(0)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let api = Arc::new(ApiFigures::default());
    let writer = tokio::spawn(api_writes(
        server.base.clone(),
        account.clone(),
        token.clone(),
        per_sec,
        stop.clone(),
        api.clone(),
    ));
    let script_account = account.clone();
    let load = tokio::spawn(callflowd::loadgen::run(LoadOptions {
        target: server.esl,
        pace: Pace::Concurrency(calls),
        duration: Duration::from_secs(seconds),
        script: Arc::new(move |_| {
            CallScript::new("1000")
                .account(Some(&script_account))
                .media_time(Duration::from_secs(2))
                .lean()
        }),
        expected_cause: "NORMAL_CLEARING".into(),
        max_in_flight: calls * 2,
        ramp_per_sec: 200.0,
    }));

    let begin = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new();
    tokio::time::sleep(warm_up).await;
    while begin.elapsed() < Duration::from_secs(seconds) {
        let rss = rss_kib(pid).expect("server alive");
        samples.push((begin.elapsed().as_secs(), rss));
        println!("soak: t={:>4}s rss={rss} KiB", begin.elapsed().as_secs());
        tokio::time::sleep(every).await;
    }
    let report = load.await.expect("loadgen");
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let end_rss = rss_kib(pid).unwrap_or(0);
    assert!(server.terminate().await, "graceful shutdown after the soak");

    assert!(samples.len() >= 3, "too few RSS samples: {samples:?}");
    // Medians of the first and the last third of the samples (at least three each): one
    // allocator or page-cache blip does not decide the verdict.
    let k = (samples.len() / 3).max(3);
    let first = median(samples.iter().take(k).map(|s| s.1).collect());
    let last = median(samples.iter().rev().take(k).map(|s| s.1).collect());
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let change = (last as f64 - first as f64) / first as f64 * 100.0;
    let writes = api.writes.load(Ordering::Relaxed);
    let errors = api.errors.load(Ordering::Relaxed);
    println!("{report}");
    println!(
        "soak figures: {seconds} s | calls completed {} failed {} | API writes {writes} errors {errors} | RSS start {first} KiB end {last} KiB ({change:+.1}%) max {max} KiB, after shutdown request {end_rss} KiB",
        report.completed,
        report.failed()
    );
    assert_eq!(report.failed(), 0, "calls failed: {report}");
    assert!(report.completed > 0);
    assert_eq!(errors, 0, "API writes failed");
    assert!(
        change.abs() <= 10.0,
        "RSS moved {change:+.1}% ({first} -> {last} KiB); samples {samples:?}"
    );
}

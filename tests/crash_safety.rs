//! Crash safety (issue 7, part 1): concurrent clients write callflows while `callflowd serve` is
//! SIGKILLed at random moments; after each kill the data directory is checked offline
//! (`callflowd fsck`, `callflowd export`) and through the API of a restarted server.
//!
//! Every acknowledged write (2xx received) must be there with exactly the acknowledged content,
//! or a later acknowledged version; every unacknowledged write (in flight at the kill) must be
//! there in full or not at all; the number/pattern index and the routing index rebuilt at
//! start-up must agree with the documents.
//!
//! Size: `CRASH_ROUNDS` (default 5), `CRASH_CLIENTS` (default 50), `CRASH_MAX_DELAY_MS` (the
//! kill comes 0..this long after the clients start; default 1500), `CRASH_SEED` (to replay a
//! run). The long form of issue 7:
//!
//! ```sh
//! CRASH_ROUNDS=20 cargo test --test crash_safety -- --nocapture
//! ```

mod common;

use bytes::Bytes;
use common::process::{ServeProcess, offline};
use common::{api_auth, client};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fields a write sets and the check compares (public, returned as sent).
const TRACKED: [&str; 5] = ["name", "numbers", "patterns", "crash_tag", "filler"];

/// What the client believes a document holds: `None` = absent (never created, or deleted).
type State = Option<Map<String, Value>>;

/// A write whose reply never came: the server may or may not have applied it.
#[derive(Debug, Clone)]
struct Unacked {
    /// The write's unique tag (`crash_tag`), to find an unacknowledged create by content.
    tag: String,
    /// The state if it was applied.
    state: State,
}

#[derive(Debug, Clone)]
struct Doc {
    /// Empty until the create is acknowledged (or an unacknowledged create is found).
    id: String,
    /// The last acknowledged state.
    acked: State,
    /// The write in flight when the server died.
    unacked: Option<Unacked>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    attempted: u64,
    acknowledged: u64,
    rejected: u64,
    never_delivered: u64,
    unacked_present: u64,
    unacked_absent: u64,
    lost: u64,
    rounds: u64,
    docs_checked: u64,
    routes_checked: u64,
}

struct Client {
    n: usize,
    seq: u64,
    rng: StdRng,
    docs: Vec<Doc>,
}

enum Outcome {
    Acked(Value),
    Rejected(u16, Value),
    NotDelivered,
    Unacked,
}

async fn send(
    http: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Outcome {
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(url)
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .expect("request");
    let response = match tokio::time::timeout(Duration::from_secs(30), http.request(request)).await
    {
        Ok(Ok(response)) => response,
        Ok(Err(error)) if error.is_connect() => return Outcome::NotDelivered,
        _ => return Outcome::Unacked,
    };
    let status = response.status().as_u16();
    let Ok(body) = response.into_body().collect().await else {
        return Outcome::Unacked;
    };
    let json: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Outcome::Acked(json)
    } else {
        Outcome::Rejected(status, json)
    }
}

impl Client {
    fn tag(&mut self) -> String {
        self.seq += 1;
        format!("c{}-{}", self.n, self.seq)
    }

    fn number(&self) -> String {
        format!("7{:02}{:06}", self.n, self.seq)
    }

    fn pattern(&self) -> String {
        format!("^\\*8{:02}{:06}(\\d*)$", self.n, self.seq)
    }

    /// A full document for a create or replace, tagged `tag`.
    fn content(&mut self, tag: &str) -> Map<String, Value> {
        let mut numbers = vec![Value::String(self.number())];
        if self.rng.gen_bool(0.3) {
            numbers.push(Value::String(format!("{}9", self.number())));
        }
        let patterns: Vec<Value> = if self.rng.gen_bool(0.4) {
            vec![Value::String(self.pattern())]
        } else {
            Vec::new()
        };
        let filler = tag.repeat(1 + self.rng.gen_range(0..200));
        json!({
            "name": format!("crash {tag}"),
            "numbers": numbers,
            "patterns": patterns,
            "crash_tag": tag,
            "filler": filler,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    /// One write against a random document; returns false once the server is gone.
    async fn step(&mut self, ctx: &RoundCtx, figures: &mut Figures) -> bool {
        let live: Vec<usize> = (0..self.docs.len())
            .filter(|&i| self.docs[i].acked.is_some() && !self.docs[i].id.is_empty())
            .collect();
        let roll = self.rng.gen_range(0..100);
        let tag = self.tag();
        let flow = json!({"module": "answer", "data": {},
                          "children": {"_": {"module": "hangup", "data": {}}}});
        let (method, url, body, doc, state) = if live.len() < 3 || roll < 35 {
            let content = self.content(&tag);
            let mut data = content.clone();
            data.insert("flow".into(), flow);
            (
                "PUT",
                ctx.callflows.clone(),
                Some(json!({"data": data})),
                None,
                Some(content),
            )
        } else {
            let i = live[self.rng.gen_range(0..live.len())];
            let id = self.docs[i].id.clone();
            let url = format!("{}/{id}", ctx.callflows);
            let current = self.docs[i].acked.clone().unwrap_or_default();
            if roll < 60 {
                let mut content = self.content(&tag);
                if self.rng.gen_bool(0.5) {
                    // Keep the numbers and patterns: a replace that moves no index entry.
                    content.insert("numbers".into(), current["numbers"].clone());
                    content.insert("patterns".into(), current["patterns"].clone());
                }
                let mut data = content.clone();
                data.insert("flow".into(), flow);
                (
                    "POST",
                    url,
                    Some(json!({"data": data})),
                    Some(i),
                    Some(content),
                )
            } else if roll < 85 {
                let mut patch = json!({"name": format!("patched {tag}"), "crash_tag": tag})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                if self.rng.gen_bool(0.5) {
                    patch.insert("numbers".into(), json!([self.number()]));
                }
                let mut merged = current.clone();
                merged.extend(patch.clone());
                (
                    "PATCH",
                    url,
                    Some(json!({"data": patch})),
                    Some(i),
                    Some(merged),
                )
            } else {
                ("DELETE", url, None, Some(i), None)
            }
        };
        figures.attempted += 1;
        match send(&ctx.http, method, &url, &ctx.token, body).await {
            Outcome::Acked(reply) => {
                figures.acknowledged += 1;
                match doc {
                    Some(i) => self.docs[i].acked = state,
                    None => {
                        let id = reply["data"]["id"].as_str().unwrap_or_default().to_string();
                        assert!(!id.is_empty(), "create reply without an id: {reply}");
                        self.docs.push(Doc {
                            id,
                            acked: state,
                            unacked: None,
                        });
                    }
                }
                true
            }
            Outcome::Rejected(status, reply) => {
                figures.rejected += 1;
                eprintln!("client {}: {method} {url} -> {status}: {reply}", self.n);
                true
            }
            Outcome::NotDelivered => {
                figures.attempted -= 1;
                figures.never_delivered += 1;
                false
            }
            Outcome::Unacked => {
                let unacked = Some(Unacked { tag, state });
                match doc {
                    Some(i) => self.docs[i].unacked = unacked,
                    None => self.docs.push(Doc {
                        id: String::new(),
                        acked: None,
                        unacked,
                    }),
                }
                false
            }
        }
    }
}

struct RoundCtx {
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    callflows: String,
    token: String,
    killed: Arc<AtomicBool>,
}

fn tracked(doc: &Map<String, Value>) -> Map<String, Value> {
    TRACKED
        .iter()
        .filter_map(|k| doc.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Every live callflow of the account, as `callflowd export` writes them (server stopped).
fn export(data: &std::path::Path, account: &str, out: &std::path::Path) -> HashMap<String, Value> {
    let _ = std::fs::remove_dir_all(out);
    let (ok, stdout, stderr) = offline(
        &[
            "export",
            "--account",
            account,
            out.to_str().expect("utf-8 path"),
        ],
        data,
    );
    assert!(ok, "export failed: {stdout}{stderr}");
    let mut docs = HashMap::new();
    for entry in std::fs::read_dir(out).expect("export dir") {
        let path = entry.expect("entry").path();
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read export")).expect("json");
        let id = doc["id"].as_str().expect("id").to_string();
        docs.insert(id, doc);
    }
    docs
}

/// Checks every client's documents against the export; resolves unacknowledged writes.
fn verify(
    clients: &mut [Client],
    exported: &HashMap<String, Value>,
    figures: &mut Figures,
) -> Vec<String> {
    let mut problems = Vec::new();
    let by_tag: HashMap<&str, &str> = exported
        .iter()
        .filter_map(|(id, d)| Some((d["crash_tag"].as_str()?, id.as_str())))
        .collect();
    let mut accounted: HashSet<String> = HashSet::new();
    for client in clients.iter_mut() {
        for doc in &mut client.docs {
            if doc.id.is_empty() {
                // An unacknowledged create: find it by its tag.
                let tag = doc
                    .unacked
                    .as_ref()
                    .map(|u| u.tag.clone())
                    .unwrap_or_default();
                if let Some(id) = by_tag.get(tag.as_str()) {
                    doc.id = id.to_string();
                }
            }
            let observed: State = if doc.id.is_empty() {
                None
            } else {
                exported
                    .get(&doc.id)
                    .and_then(Value::as_object)
                    .map(tracked)
            };
            if !doc.id.is_empty() {
                accounted.insert(doc.id.clone());
            }
            figures.docs_checked += 1;
            let acked = doc.acked.as_ref().map(tracked);
            match doc.unacked.take() {
                Some(unacked) => {
                    let applied = unacked.state.as_ref().map(tracked);
                    if observed == applied && observed != acked {
                        figures.unacked_present += 1;
                        doc.acked = unacked.state;
                    } else if observed == acked {
                        figures.unacked_absent += 1;
                    } else {
                        figures.lost += 1;
                        problems.push(format!(
                            "doc {:?}: observed {observed:?}, acknowledged {acked:?}, in flight {applied:?}",
                            doc.id
                        ));
                    }
                }
                None => {
                    if observed != acked {
                        figures.lost += 1;
                        problems.push(format!(
                            "doc {:?}: observed {observed:?}, acknowledged {acked:?}",
                            doc.id
                        ));
                    }
                }
            }
            if let (Some(doc_body), false) = (exported.get(&doc.id), doc.id.is_empty()) {
                if !doc_body["flow"].is_object() {
                    problems.push(format!("doc {}: flow missing: {doc_body}", doc.id));
                }
            }
        }
        client.docs.retain(|d| d.acked.is_some());
    }
    for id in exported.keys() {
        if !accounted.contains(id) {
            problems.push(format!("document {id} was never written by a client"));
        }
    }
    problems
}

/// Through the API of the restarted server: the listing equals the export, and numbers and
/// patterns route (simulate) to the callflow holding them; numbers of deleted callflows do not.
async fn verify_api(
    server: &ServeProcess,
    account: &str,
    token: &str,
    exported: &HashMap<String, Value>,
    freed: &[String],
    rng: &mut StdRng,
    figures: &mut Figures,
) -> Vec<String> {
    let mut problems = Vec::new();
    let callflows = format!("{}/v2/accounts/{account}/callflows", server.base);
    let http = client();
    let list = match send(
        &http,
        "GET",
        &format!("{callflows}?paginate=false"),
        token,
        None,
    )
    .await
    {
        Outcome::Acked(reply) => reply,
        _ => return vec!["listing failed".into()],
    };
    let rows = list["data"].as_array().cloned().unwrap_or_default();
    let listed: HashMap<String, Value> = rows
        .into_iter()
        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r)))
        .collect();
    if listed.len() != exported.len() {
        problems.push(format!(
            "listing has {} callflows, the export {}",
            listed.len(),
            exported.len()
        ));
    }
    let mut routes: Vec<(String, Option<String>)> = Vec::new();
    for (id, doc) in exported {
        match listed.get(id) {
            Some(row) if row["numbers"] == doc["numbers"] && row["patterns"] == doc["patterns"] => {
            }
            other => problems.push(format!("listing row of {id}: {other:?}")),
        }
        for number in doc["numbers"].as_array().into_iter().flatten() {
            routes.push((
                number.as_str().unwrap_or_default().to_string(),
                Some(id.clone()),
            ));
        }
        for pattern in doc["patterns"].as_array().into_iter().flatten() {
            // ^\*8CCSSSSSS(\d*)$ -> *8CCSSSSSS42
            let dialled = pattern
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('^')
                .replace("\\*", "*")
                .replace("(\\d*)$", "42");
            routes.push((dialled, Some(id.clone())));
        }
    }
    for number in freed {
        routes.push((number.clone(), None));
    }
    // A sample: every simulation is a whole call through the engine.
    let sample = 30.min(routes.len());
    for _ in 0..sample {
        let (number, owner) = routes.swap_remove(rng.gen_range(0..routes.len()));
        let reply = send(
            &http,
            "POST",
            &format!("{}/v2/accounts/{account}/simulate", server.base),
            token,
            Some(json!({"data": {"number": number}})),
        )
        .await;
        let Outcome::Acked(reply) = reply else {
            problems.push(format!("simulate {number} failed"));
            continue;
        };
        let text = reply["data"].to_string();
        figures.routes_checked += 1;
        match owner {
            Some(id) if !text.contains(&format!("to callflow {id}")) => {
                problems.push(format!("{number} does not route to {id}: {text}"))
            }
            None if text.contains("routed ") => {
                problems.push(format!("freed number {number} still routes: {text}"))
            }
            _ => {}
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let rounds = env_or("CRASH_ROUNDS", 5);
    let clients_n = env_or("CRASH_CLIENTS", 50) as usize;
    let max_delay = env_or("CRASH_MAX_DELAY_MS", 1500);
    let seed = env_or("CRASH_SEED", rand::random::<u32>() as u64);
    println!(
        "crash safety: {rounds} rounds x {clients_n} clients, kill within {max_delay} ms, seed {seed}"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let export_dir = dir.path().join("export");
    let started = Instant::now();

    let first = ServeProcess::spawn(&data, &[]).await;
    let api_key = first
        .api_key
        .clone()
        .expect("first start prints the API key");
    let account = first
        .account_id
        .clone()
        .expect("first start prints the account");
    let token = api_auth(&first.base, &api_key).await;
    let mut server = Some(first);

    let mut clients: Vec<Client> = (0..clients_n)
        .map(|n| Client {
            n,
            seq: 0,
            rng: StdRng::seed_from_u64(seed ^ ((n as u64 + 1) << 32)),
            docs: Vec::new(),
        })
        .collect();
    let mut figures = Figures::default();
    let mut freed: Vec<String> = Vec::new();
    let mut previous_numbers: HashSet<String> = HashSet::new();

    for round in 1..=rounds {
        let running = match server.take() {
            Some(s) => s,
            None => ServeProcess::spawn(&data, &[]).await,
        };
        let ctx = Arc::new(RoundCtx {
            http: client(),
            callflows: format!("{}/v2/accounts/{account}/callflows", running.base),
            token: token.clone(),
            killed: Arc::new(AtomicBool::new(false)),
        });
        let mut tasks = Vec::new();
        for mut c in std::mem::take(&mut clients) {
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(async move {
                let mut f = Figures::default();
                while !ctx.killed.load(Ordering::Relaxed) {
                    if !c.step(&ctx, &mut f).await {
                        break;
                    }
                }
                (c, f)
            }));
        }
        let delay = Duration::from_millis(rng.gen_range(0..=max_delay));
        tokio::time::sleep(delay).await;
        ctx.killed.store(true, Ordering::Relaxed);
        running.kill().await;
        let before = figures;
        for task in tasks {
            let (c, f) = task.await.expect("client task");
            figures.attempted += f.attempted;
            figures.acknowledged += f.acknowledged;
            figures.rejected += f.rejected;
            figures.never_delivered += f.never_delivered;
            clients.push(c);
        }
        clients.sort_by_key(|c| c.n);
        // Numbers of documents deleted for good must be free after the restart.
        let known_numbers = |c: &[Client]| -> HashSet<String> {
            c.iter()
                .flat_map(|c| c.docs.iter())
                .flat_map(|d| {
                    d.acked
                        .iter()
                        .chain(d.unacked.iter().filter_map(|u| u.state.as_ref()))
                })
                .flat_map(|s| s["numbers"].as_array().cloned().unwrap_or_default())
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        };

        // Offline: fsck (documents vs number/pattern index vs rebuilt routing), then export.
        let (ok, stdout, stderr) = offline(&["fsck", "--json"], &data);
        let report: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        assert!(ok, "round {round}: fsck found problems: {stdout}{stderr}");
        let exported = export(&data, &account, &export_dir);
        let problems = verify(&mut clients, &exported, &mut figures);
        assert!(
            problems.is_empty(),
            "round {round}: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
        let still: HashSet<String> = known_numbers(&clients);
        let exported_numbers: HashSet<String> = exported
            .values()
            .flat_map(|d| d["numbers"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        assert_eq!(still, exported_numbers, "round {round}: numbers differ");
        let freed_sample: Vec<String> = freed.iter().rev().take(10).cloned().collect();

        // Online: restart on the same directory; listing and routing through the API.
        let restarted = ServeProcess::spawn(&data, &[]).await;
        assert!(restarted.api_key.is_none(), "bootstrap happens only once");
        let problems = verify_api(
            &restarted,
            &account,
            &token,
            &exported,
            &freed_sample,
            &mut rng,
            &mut figures,
        )
        .await;
        assert!(
            problems.is_empty(),
            "round {round}: API disagrees:\n{}",
            problems.join("\n")
        );
        figures.rounds += 1;
        println!(
            "round {round:>2}: kill after {:>4} ms: {} writes ({} acked, {} unacked present, {} unacked absent), {} callflows, fsck: {} slots, {} problems",
            delay.as_millis(),
            figures.attempted - before.attempted,
            figures.acknowledged - before.acknowledged,
            figures.unacked_present - before.unacked_present,
            figures.unacked_absent - before.unacked_absent,
            exported.len(),
            report["unique_entries"],
            report["problems"].as_array().map_or(0, Vec::len),
        );
        // Numbers held at the previous check and gone now are free for good (never reused).
        freed.extend(previous_numbers.difference(&exported_numbers).cloned());
        previous_numbers = exported_numbers;
        server = Some(restarted);
    }
    if let Some(s) = server.take() {
        s.kill().await;
    }
    println!(
        "crash safety figures: rounds {} | writes attempted {} | acknowledged {} | unacknowledged present {} | unacknowledged absent {} | lost {} | rejected {} | not delivered (connect refused) {} | docs checked {} | routes simulated {} | {:.1} s",
        figures.rounds,
        figures.attempted,
        figures.acknowledged,
        figures.unacked_present,
        figures.unacked_absent,
        figures.lost,
        figures.rejected,
        figures.never_delivered,
        figures.docs_checked,
        figures.routes_checked,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(figures.lost, 0);
    assert_eq!(figures.rejected, 0, "no write may be refused");
    assert_eq!(
        figures.attempted,
        figures.acknowledged + figures.rejected + figures.unacked_present + figures.unacked_absent,
        "every write is accounted for"
    );
}

//! The call load generator: plays FreeSWITCH's side of many outbound-ESL calls at once (built on
//! the fake switch), against callflowd or any other outbound-ESL controller.
//!
//! Calls start at a target rate (calls/s) or are kept at a fixed concurrency for a duration.
//! Every call is a [`CallScript`] (realistic ~6 KB CHANNEL_DATA and full-variable EXECUTE /
//! EXECUTE_COMPLETE events; caller behaviour: DTMF, hang-up time; `media_time` for how long apps
//! take). The report gives completed calls/s, failures by reason, the controller's per-command
//! turnaround (from the event that completed a command to the next command's arrival)
//! p50/p99/p999, and the concurrency reached.
//!
//! A call counts as completed when the channel hung up with the expected cause and the
//! controller closed the socket after CHANNEL_HANGUP_COMPLETE, with no protocol complaint from
//! the fake switch.

use crate::fakeswitch::{CallEnd, CallScript, Transcript, dial, quantile};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How calls are started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// New calls per second, whatever the concurrency.
    Rate(f64),
    /// Keep this many calls in flight.
    Concurrency(usize),
}

/// What to run.
#[derive(Clone)]
pub struct LoadOptions {
    /// The controller's outbound-ESL address.
    pub target: SocketAddr,
    /// Start rate or concurrency.
    pub pace: Pace,
    /// How long new calls are started.
    pub duration: Duration,
    /// Builds the script of call number `n`.
    pub script: Arc<dyn Fn(u64) -> CallScript + Send + Sync>,
    /// The hangup cause a completed call ends with.
    pub expected_cause: String,
    /// Never more than this many calls in flight (protects the generator in rate mode).
    pub max_in_flight: usize,
    /// In concurrency mode, at most this many new calls per second while filling up (a real
    /// switch offers calls at a few hundred per second, not thousands in the same instant).
    pub ramp_per_sec: f64,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Calls started.
    pub started: u64,
    /// Calls completed as expected.
    pub completed: u64,
    /// Failed calls by reason.
    pub failures: BTreeMap<String, u64>,
    /// From the first call to the last one finishing.
    pub elapsed: Duration,
    /// Controller turnaround samples (µs).
    pub turnarounds_us: Vec<u32>,
    /// Call durations (ms).
    pub call_ms: Vec<u32>,
    /// Most calls in flight at once.
    pub peak_concurrency: usize,
}

impl LoadReport {
    /// Completed calls per second over the whole run.
    pub fn completed_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }

    /// Failed calls.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// A turnaround quantile.
    pub fn turnaround(&self, p: f64) -> Option<Duration> {
        let samples: Vec<Duration> = self
            .turnarounds_us
            .iter()
            .map(|us| Duration::from_micros(u64::from(*us)))
            .collect();
        quantile(&samples, p)
    }

    /// A call-duration quantile.
    pub fn call_duration(&self, p: f64) -> Option<Duration> {
        let samples: Vec<Duration> = self
            .call_ms
            .iter()
            .map(|ms| Duration::from_millis(u64::from(*ms)))
            .collect();
        quantile(&samples, p)
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |p: f64| {
            self.turnaround(p)
                .map(|d| format!("{:.3} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        writeln!(f, "calls started       {}", self.started)?;
        writeln!(f, "calls completed     {}", self.completed)?;
        writeln!(f, "calls failed        {}", self.failed())?;
        for (reason, count) in &self.failures {
            writeln!(f, "  {reason:<32} {count}")?;
        }
        writeln!(f, "elapsed             {:.2} s", self.elapsed.as_secs_f64())?;
        writeln!(f, "completed calls/s   {:.1}", self.completed_per_sec())?;
        writeln!(f, "peak concurrency    {}", self.peak_concurrency)?;
        writeln!(
            f,
            "turnaround          p50 {}  p99 {}  p999 {}  (n={})",
            q(0.50),
            q(0.99),
            q(0.999),
            self.turnarounds_us.len()
        )?;
        let d = |p: f64| {
            self.call_duration(p)
                .map(|d| format!("{} ms", d.as_millis()))
                .unwrap_or_else(|| "-".into())
        };
        write!(f, "call duration       p50 {}  p99 {}", d(0.5), d(0.99))
    }
}

/// The outcome of one call, small enough to keep for every call.
struct CallSummary {
    failure: Option<String>,
    turnarounds_us: Vec<u32>,
    duration_ms: u32,
}

/// Classifies a finished call.
fn summarize(transcript: &Transcript, expected_cause: &str) -> Option<String> {
    if let Some(error) = transcript.errors.first() {
        let kind: String = error.chars().take(40).collect();
        return Some(format!("protocol: {kind}"));
    }
    match &transcript.end {
        Some(CallEnd::FirstCommandTimeout) => return Some("no connect within 25 s".into()),
        Some(CallEnd::SafetyTimeout) => return Some("call never ended".into()),
        Some(CallEnd::Fault(f)) => return Some(format!("fault: {f}")),
        Some(CallEnd::ProtocolError(_)) => return Some("protocol error".into()),
        Some(CallEnd::Io(_)) => return Some("socket error".into()),
        _ => {}
    }
    if transcript.controller_left_mid_call {
        return Some("controller left mid-call".into());
    }
    match &transcript.hangup {
        None => Some("never hung up".into()),
        Some(h) if h.cause != expected_cause => Some(format!("hangup {}", h.cause)),
        Some(_) if !transcript.controller_closed_after_hangup_complete => {
            Some("socket not closed after hangup".into())
        }
        Some(_) => None,
    }
}

async fn one_call(target: SocketAddr, script: CallScript, expected_cause: Arc<str>) -> CallSummary {
    let started = Instant::now();
    let outcome = dial(target, script).await;
    let duration_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    match outcome {
        Ok(transcript) => CallSummary {
            failure: summarize(&transcript, &expected_cause),
            turnarounds_us: transcript
                .turnarounds
                .iter()
                .map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32)
                .collect(),
            duration_ms,
        },
        Err(error) => CallSummary {
            failure: Some(format!("connect: {}", error.kind())),
            turnarounds_us: Vec::new(),
            duration_ms,
        },
    }
}

/// Runs the load and reports.
pub async fn run(options: LoadOptions) -> LoadReport {
    let mut report = LoadReport::default();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let expected: Arc<str> = Arc::from(options.expected_cause.as_str());
    let mut calls: JoinSet<CallSummary> = JoinSet::new();
    let begin = Instant::now();
    let stop_at = begin + options.duration;
    let mut n: u64 = 0;
    let max_in_flight = options.max_in_flight.max(1);

    let absorb = |report: &mut LoadReport, summary: CallSummary| {
        match summary.failure {
            None => report.completed += 1,
            Some(reason) => *report.failures.entry(reason).or_default() += 1,
        }
        report.turnarounds_us.extend(summary.turnarounds_us);
        report.call_ms.push(summary.duration_ms);
    };

    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let now = Instant::now();
        if now >= stop_at {
            break;
        }
        let wanted: u64 = match options.pace {
            Pace::Rate(rate) => ((now - begin).as_secs_f64() * rate) as u64 + 1,
            Pace::Concurrency(c) => {
                let ramp = ((now - begin).as_secs_f64() * options.ramp_per_sec.max(1.0)) as u64 + 1;
                (n + c.saturating_sub(calls.len()) as u64).min(ramp.max(n))
            }
        };
        while n < wanted && calls.len() < max_in_flight {
            let script = (options.script)(n);
            let counter = in_flight.clone();
            let expected = expected.clone();
            let target = options.target;
            counter.fetch_add(1, Ordering::Relaxed);
            calls.spawn(async move {
                let summary = one_call(target, script, expected).await;
                counter.fetch_sub(1, Ordering::Relaxed);
                summary
            });
            n += 1;
        }
        report.peak_concurrency = report.peak_concurrency.max(calls.len());
        while let Some(done) = calls.try_join_next() {
            if let Ok(summary) = done {
                absorb(&mut report, summary);
            }
        }
        match options.pace {
            Pace::Concurrency(_) => {
                tokio::select! {
                    Some(done) = calls.join_next(), if !calls.is_empty() => {
                        if let Ok(summary) = done {
                            absorb(&mut report, summary);
                        }
                    }
                    _ = tick.tick() => {}
                }
            }
            Pace::Rate(_) => {
                tick.tick().await;
            }
        }
    }
    while let Some(done) = calls.join_next().await {
        if let Ok(summary) = done {
            absorb(&mut report, summary);
        }
    }
    report.started = n;
    report.elapsed = begin.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::listener;
    use crate::engine::testkit::{ACCOUNT, NUMBER, ctx, node, store_with_flow};
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drives_the_engine_without_failures() {
        let flow = node(
            "answer",
            json!({}),
            json!({"_": node("play", json!({"id": "silence_stream://0", "answer": false, "terminators": []}),
                   json!({"_": node("hangup", json!({"cause": "NORMAL_CLEARING"}), json!({}))}))}),
        );
        let mut flow = flow;
        let mut errors = crate::callflow::errors::FieldErrors::new();
        crate::modules::validate_flow(&mut flow, "flow", &mut errors);
        assert!(errors.is_empty());
        let ctx = ctx(store_with_flow(flow));
        let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = esl.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(listener::serve(esl, ctx.clone(), stop_rx));
        let report = run(LoadOptions {
            target,
            pace: Pace::Concurrency(20),
            duration: Duration::from_secs(1),
            script: Arc::new(|_| CallScript::new(NUMBER).account(Some(ACCOUNT)).lean()),
            expected_cause: "NORMAL_CLEARING".into(),
            max_in_flight: 1000,
            ramp_per_sec: 10_000.0,
        })
        .await;
        assert!(report.completed > 20, "{report}");
        assert_eq!(report.failed(), 0, "{report}");
        assert!(report.turnaround(0.5).is_some());
        let _ = stop_tx.send(true);
        let _ = server.await;
        assert_eq!(ctx.stats.active(), 0, "no call left behind");
        println!("{report}");
    }
}

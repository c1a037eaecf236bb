//! Runs the real engine against the fake switch: the core of `callflowd simulate`, the module
//! tests and the load generator's self-check.
//!
//! One simulated call = an ephemeral loopback listener, the fake switch dialling it like
//! FreeSWITCH's `socket` app, and the real session code driving it. Both sides' records come
//! back: the engine's timeline (modules, commands, results, branches) and the fake's transcript
//! (the exact ESL bytes it received and sent).

use crate::engine::EngineContext;
use crate::engine::call::{Timeline, TimelineEntry};
use crate::engine::session::{SessionOptions, SessionReport, run_session};
use crate::fakeswitch::{BridgeOutcome, CallScript, DtmfAt, Transcript, dial};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Both sides of one simulated call.
#[derive(Debug)]
pub struct Simulation {
    /// What the engine did.
    pub report: SessionReport,
    /// What the fake switch saw.
    pub transcript: Transcript,
}

/// Plays `script` against the engine described by `ctx` and returns both records.
pub async fn simulate(ctx: Arc<EngineContext>, script: CallScript) -> std::io::Result<Simulation> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let switch = tokio::spawn(dial(addr, script));
    let (stream, _) = listener.accept().await?;
    drop(listener);
    let report = run_session(
        stream,
        ctx,
        SessionOptions {
            record_timeline: true,
        },
    )
    .await;
    let transcript = switch
        .await
        .map_err(|e| std::io::Error::other(format!("fake switch task failed: {e}")))??;
    Ok(Simulation { report, transcript })
}

/// What a dry run plays: the dialled number and the scripted caller (the `simulate` command and
/// `POST /v2/accounts/{id}/simulate`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SimulateRequest {
    /// The dialled number (`Caller-Destination-Number`).
    pub number: String,
    /// The caller's number.
    #[serde(default = "default_caller")]
    pub caller: String,
    /// Caller DTMF: `1@2s,#@3s` (time after the call starts) or `1@playback#2+300ms`.
    #[serde(default)]
    pub digits: Option<String>,
    /// Far-end DTMF while bridged, reported as FreeSWITCH's bind_digit_action would
    /// (`*2101@5s`: the whole code at that time).
    #[serde(default)]
    pub peer_digits: Option<String>,
    /// The caller hangs up after this long (`30s`, `1500ms`).
    #[serde(default)]
    pub hangup_after: Option<String>,
    /// How long each media app takes (`500ms` by default, `0s` for instant).
    #[serde(default)]
    pub media_time: Option<String>,
    /// How bridges end: `answered` (talk 5 s), `answered:30s`, or a failure cause such as
    /// `USER_BUSY` / `NO_ANSWER`.
    #[serde(default)]
    pub bridge: Option<String>,
}

fn default_caller() -> String {
    "5551234".into()
}

/// Parses `500ms`, `2s`, `1.5s`, `3m`, `1h` (plain numbers are seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("not a duration: {text:?}"));
    }
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit in {text:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration out of range: {text:?}"))
}

impl SimulateRequest {
    /// The fake switch script for this request in `account_id`.
    pub fn script(&self, account_id: &str) -> Result<CallScript, String> {
        let mut script = CallScript::new(&self.number)
            .account(Some(account_id))
            .caller(&self.caller, &self.caller)
            .media_time(match &self.media_time {
                Some(t) => parse_duration(t)?,
                None => Duration::from_millis(500),
            })
            .max_duration(Duration::from_secs(600));
        if let Some(digits) = self.digits.as_deref().filter(|d| !d.trim().is_empty()) {
            script = script.dtmf(digits).map_err(|e| e.0)?;
        }
        if let Some(peer) = self.peer_digits.as_deref().filter(|d| !d.trim().is_empty()) {
            for item in peer.split(',') {
                let (code, at) = item
                    .trim()
                    .split_once('@')
                    .ok_or_else(|| format!("peer digits need code@time: {item:?}"))?;
                let at = parse_duration(at)?;
                script = script.event_at(
                    DtmfAt::CallTime(at),
                    "CHANNEL_DATA",
                    &[("metaflow", "peer"), ("digits", code)],
                );
            }
        }
        if let Some(after) = &self.hangup_after {
            script = script.hangup_after(parse_duration(after)?);
        }
        let outcome = match self.bridge.as_deref().map(str::trim) {
            None | Some("") | Some("answered") => BridgeOutcome::answered(Duration::from_secs(5)),
            Some(spec) => match spec.strip_prefix("answered:") {
                Some(talk) => BridgeOutcome::answered(parse_duration(talk)?),
                None => BridgeOutcome::failed(&spec.to_ascii_uppercase()),
            },
        };
        Ok(script.bridge("", outcome))
    }
}

/// The timeline as text, one line per step: `  0.512s  module play`, `  > execute playback ...`,
/// `  < playback: FILE PLAYED`, `  -> branch _`.
pub fn render_timeline(timeline: &Timeline) -> String {
    let mut out = String::new();
    for (at, entry) in timeline {
        let line = match entry {
            TimelineEntry::Module { module, data } => format!("module {module} {data}"),
            TimelineEntry::Command { text } => format!("  > {text}"),
            TimelineEntry::Result { app, response } => format!("  < {app}: {response}"),
            TimelineEntry::Branch { key } => format!("  -> {key}"),
            TimelineEntry::Dtmf { digit } => format!("  dtmf {digit}"),
            TimelineEntry::Note { text } => format!("  # {text}"),
        };
        out.push_str(&format!("{:>8.3}s  {line}\n", at.as_secs_f64()));
    }
    out
}

/// The timeline as JSON (the API's `simulate` reply).
pub fn timeline_json(timeline: &Timeline) -> serde_json::Value {
    use serde_json::json;
    timeline
        .iter()
        .map(|(at, entry)| {
            let at_ms = at.as_secs_f64() * 1000.0;
            match entry {
                TimelineEntry::Module { module, data } => {
                    json!({"at_ms": at_ms, "module": module, "data": data})
                }
                TimelineEntry::Command { text } => json!({"at_ms": at_ms, "command": text}),
                TimelineEntry::Result { app, response } => {
                    json!({"at_ms": at_ms, "app": app, "result": response})
                }
                TimelineEntry::Branch { key } => json!({"at_ms": at_ms, "branch": key}),
                TimelineEntry::Dtmf { digit } => json!({"at_ms": at_ms, "dtmf": digit.to_string()}),
                TimelineEntry::Note { text } => json!({"at_ms": at_ms, "note": text}),
            }
        })
        .collect()
}

/// How a simulated call ended, in words.
pub fn describe_end(simulation: &Simulation) -> String {
    let hangup = simulation
        .transcript
        .hangup
        .as_ref()
        .map(|h| format!("hangup {} by {:?}", h.cause, h.by))
        .unwrap_or_else(|| "no hangup".into());
    format!("{:?}; {hangup}", simulation.report.end)
}

//! The fake switch's side of one outbound connection: mod_event_socket's listener (replies,
//! subscriptions, linger) plus the channel's park loop and the apps it runs.
//!
//! [`Session`] is a synchronous state machine: feed it commands ([`Session::on_command`]) and
//! the passage of time ([`Session::run_due`]); it appends the bytes FreeSWITCH would write to
//! [`Session::out`] and keeps the [`Transcript`]. [`run_call`] drives it over any stream.

use super::apps::{self, Collect};
use super::channel::{self, Calling, Channel, ChannelKind, EventShape, Format, NO_VARS, WITH_VARS};
use super::command::{self, RawCommand};
use super::script::{BridgeOutcome, CallScript, DtmfAt, Fault, ScriptedEvent, Side};
use super::transcript::{CallEnd, ExecutedApp, Hangup, HangupBy, Received, SentFrame, Transcript};
use super::wire;
use bytes::BytesMut;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The event types `myevents` subscribes to (mod_event_socket.c, A4).
const MYEVENTS: &[&str] = &[
    "CHANNEL_ANSWER",
    "CHANNEL_APPLICATION",
    "CHANNEL_BRIDGE",
    "CHANNEL_CREATE",
    "CHANNEL_DATA",
    "CHANNEL_DESTROY",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_UNPARK",
    "DETECTED_SPEECH",
    "DTMF",
    "TALK",
    "NOTALK",
];

/// Apps without SAF_SUPPORT_NOMEDIA: on a channel without media they pre-answer it first (A5).
const MEDIA_APPS: &[&str] = &[
    "playback",
    "endless_playback",
    "speak",
    "say",
    "phrase",
    "read",
    "play_and_get_digits",
    "record",
    "gentones",
    "echo",
    "conference",
    "valet_park",
    "detect_speech",
    "displace_session",
];

#[derive(Debug, Clone)]
struct Exec {
    cmd: usize,
    app: String,
    arg: String,
    uuid: Option<String>,
    uuid_name: Option<String>,
    lock: bool,
    loops: i64,
}

#[derive(Debug)]
enum Queued {
    Execute(Exec),
    Hangup { cmd: usize, cause: String },
}

impl Queued {
    fn cmd(&self) -> usize {
        match self {
            Queued::Execute(e) => e.cmd,
            Queued::Hangup { cmd, .. } => *cmd,
        }
    }
}

/// What an `api` command does after its reply is written.
#[derive(Debug)]
enum ApiAction {
    None,
    Break { all: bool },
    Kill(String),
    Answer,
    Transfer(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadPhase {
    Prompt,
    Wait,
    Invalid,
}

#[derive(Debug)]
struct ReadState {
    c: Collect,
    pagd: bool,
    regex: Option<regex::Regex>,
    digits: String,
    try_no: usize,
    phase: ReadPhase,
}

#[derive(Debug)]
struct BridgeState {
    outcome: BridgeOutcome,
    talking: bool,
    callee: String,
}

#[derive(Debug)]
enum Kind {
    /// playback / endless_playback: terminators, FILE PLAYED / PLAYBACK ERROR.
    Playback,
    /// speak / say / phrase / gentones: plays for a while, no terminators.
    Prompt,
    /// sleep, conference, record...: completes at its deadline.
    Timed,
    /// park, echo, valet_park: until hangup, break or transfer.
    Block,
    Read(Box<ReadState>),
    Bridge(Box<BridgeState>),
    /// An instant app, on the stack only while it completes (hangup, respond 4xx...).
    Instant,
}

#[derive(Debug)]
struct Running {
    ex: Exec,
    data: String,
    app_uuid: String,
    started: Instant,
    deadline: Option<Instant>,
    paused_left: Option<Option<Duration>>,
    paused_since: Option<Instant>,
    paused_total: Duration,
    loop_no: i64,
    kind: Kind,
    tr_index: usize,
    /// Fault: never send EXECUTE_COMPLETE.
    silent: bool,
}

impl Running {
    fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
            .saturating_sub(self.paused_total)
    }
}

/// A scripted digit or event waiting for its anchor.
#[derive(Debug, Clone)]
enum Scripted {
    Dtmf(char),
    Event(ScriptedEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    FirstCommand,
    Safety,
    Drop,
    LingerClose,
    CallerHangup,
    SchedHangup,
    TransferHangup,
    Dtmf,
    Inject,
    AppDeadline,
    AppStart,
}

/// One fake call in progress. See the module doc.
pub struct Session {
    s: CallScript,
    ch: Channel,
    /// Bytes to write to the controller, in order.
    pub out: Vec<u8>,
    tr: Transcript,
    t0: Instant,
    start: Option<Instant>,
    myevents: bool,
    fmt: Format,
    extra_events: HashSet<String>,
    /// Types removed with `nixevent` (FreeSWITCH clears the listener's bit, whoever set it).
    nixed: HashSet<String>,
    all_events: bool,
    filters: Vec<(String, String)>,
    logging: bool,
    linger: Option<i64>,
    queue: VecDeque<Queued>,
    stack: Vec<Running>,
    next_start: Option<Instant>,
    dtmf: Vec<(Instant, char)>,
    /// Digits and events anchored on app starts, not yet due.
    anchored: Vec<(DtmfAt, Scripted)>,
    /// Injected events with their times.
    injected: Vec<(Instant, ScriptedEvent)>,
    app_counts: HashMap<String, usize>,
    known: HashSet<String>,
    caller_hangup_at: Option<Instant>,
    sched_hangup: Option<(Instant, String)>,
    drop_at: Option<Instant>,
    transfer_hangup_at: Option<Instant>,
    linger_close_at: Option<Instant>,
    first_cmd_deadline: Instant,
    safety_at: Instant,
    socket_app_done: bool,
    transferred: bool,
    hangup_by_caller: bool,
    close: Option<CallEnd>,
    completed_at: Vec<Option<Instant>>,
    last_app: Option<(String, String)>,
    /// Fault: CHANNEL_STATE events still to flood.
    pub flood_remaining: usize,
}

impl Session {
    /// A fresh call: the socket app just dialled the controller at `now`.
    pub fn new(script: CallScript, now: Instant) -> Self {
        let ch = Channel::new(&script.channel);
        let known = script.known_apps.iter().cloned().collect();
        let first_cmd_deadline = after(now, script.first_command_timeout);
        let safety_at = after(now, script.max_duration);
        let tr = Transcript {
            uuid: ch.uuid().to_string(),
            ..Transcript::default()
        };
        Session {
            ch,
            out: Vec::with_capacity(16 * 1024),
            tr,
            t0: now,
            start: None,
            myevents: false,
            fmt: Format::Plain,
            extra_events: HashSet::new(),
            nixed: HashSet::new(),
            all_events: false,
            filters: Vec::new(),
            logging: false,
            linger: None,
            queue: VecDeque::new(),
            stack: Vec::new(),
            next_start: None,
            dtmf: Vec::new(),
            anchored: Vec::new(),
            injected: Vec::new(),
            app_counts: HashMap::new(),
            known,
            caller_hangup_at: None,
            sched_hangup: None,
            drop_at: None,
            transfer_hangup_at: None,
            linger_close_at: None,
            first_cmd_deadline,
            safety_at,
            socket_app_done: false,
            transferred: false,
            hangup_by_caller: false,
            close: None,
            completed_at: Vec::new(),
            last_app: None,
            flood_remaining: 0,
            s: script,
        }
    }

    /// The channel (variables, state).
    pub fn channel(&self) -> &Channel {
        &self.ch
    }

    /// Set once the connection must close (after the pending output is written).
    pub fn closing(&self) -> Option<&CallEnd> {
        self.close.as_ref()
    }

    fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.t0)
    }

    fn close_with(&mut self, end: CallEnd) {
        if self.close.is_none() {
            self.close = Some(end);
        }
    }

    // ---------------------------------------------------------------- output helpers

    fn record(&mut self, now: Instant, start: usize, meta: SentFrame) {
        let mut meta = meta;
        meta.at = self.since(now);
        if self.s.record_frames {
            meta.bytes = self.out[start..].to_vec();
        }
        self.tr.frames.push(meta);
    }

    fn frame(content_type: &'static str) -> SentFrame {
        SentFrame {
            at: Duration::ZERO,
            content_type,
            event: None,
            application: None,
            response: None,
            app_uuid: None,
            text: None,
            bytes: Vec::new(),
        }
    }

    fn reply(&mut self, now: Instant, idx: usize, text: &str) {
        let start = self.out.len();
        wire::command_reply(&mut self.out, text);
        let mut f = Self::frame("command/reply");
        f.text = Some(text.to_string());
        self.record(now, start, f);
        if let Some(c) = self.tr.commands.get_mut(idx) {
            c.reply = Some(text.to_string());
        }
    }

    fn api_reply(&mut self, now: Instant, idx: usize, body: &str) {
        let start = self.out.len();
        wire::api_response(&mut self.out, body);
        let mut f = Self::frame("api/response");
        f.text = Some(body.to_string());
        self.record(now, start, f);
        if let Some(c) = self.tr.commands.get_mut(idx) {
            c.reply = Some(body.to_string());
        }
    }

    fn wanted(&self, name: &str) -> bool {
        (self.all_events
            || (self.myevents && MYEVENTS.contains(&name))
            || self.extra_events.contains(name))
            && !self.nixed.contains(name)
    }

    fn passes_filters(&self, body: &str) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let headers: Vec<(String, String)> = match self.fmt {
            Format::Plain => body
                .lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_string(), wire::decode(v)))
                .collect(),
            Format::Json => {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body)
                    .map(|m| {
                        m.into_iter()
                            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        };
        self.filters.iter().any(|(fh, fv)| {
            headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(fh)
                    && match fv.strip_prefix('/') {
                        Some(re) => {
                            regex::Regex::new(re.trim_end_matches('/')).is_ok_and(|r| r.is_match(v))
                        }
                        None => v == fv,
                    }
            })
        })
    }

    fn emit(
        &mut self,
        now: Instant,
        name: &str,
        at: Calling,
        shape: EventShape,
        tail: &[(&str, &str)],
    ) {
        if !self.wanted(name) {
            return;
        }
        let body = self.ch.render_event_body(self.fmt, name, at, shape, tail);
        if !self.passes_filters(&body) {
            return;
        }
        let start = self.out.len();
        wire::event_frame(&mut self.out, self.fmt == Format::Json, &body);
        let get = |k: &str| {
            tail.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let mut f = Self::frame(if self.fmt == Format::Json {
            "text/event-json"
        } else {
            "text/event-plain"
        });
        f.event = Some(name.to_string());
        f.application = get("Application");
        f.response = get("Application-Response");
        f.app_uuid = get("Application-UUID");
        self.record(now, start, f);
    }

    // ---------------------------------------------------------------- timers

    fn next_timer(&self) -> Option<(Instant, Timer)> {
        let mut best: Option<(Instant, Timer)> = None;
        let mut consider = |t: Option<Instant>, which: Timer| {
            if let Some(t) = t {
                if best.is_none_or(|(b, bw)| (t, which) < (b, bw)) {
                    best = Some((t, which));
                }
            }
        };
        if self.tr.commands.is_empty() {
            consider(Some(self.first_cmd_deadline), Timer::FirstCommand);
        }
        consider(Some(self.safety_at), Timer::Safety);
        consider(self.drop_at, Timer::Drop);
        consider(self.linger_close_at, Timer::LingerClose);
        if self.ch.is_up() {
            consider(self.caller_hangup_at, Timer::CallerHangup);
            consider(
                self.sched_hangup.as_ref().map(|(t, _)| *t),
                Timer::SchedHangup,
            );
            consider(self.transfer_hangup_at, Timer::TransferHangup);
            consider(self.dtmf.iter().map(|(t, _)| *t).min(), Timer::Dtmf);
            consider(self.injected.iter().map(|(t, _)| *t).min(), Timer::Inject);
            consider(
                self.stack.last().and_then(|r| r.deadline),
                Timer::AppDeadline,
            );
            consider(self.next_start, Timer::AppStart);
        }
        best
    }

    /// When the session next needs [`run_due`](Self::run_due).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_timer().map(|(t, _)| t)
    }

    /// Fires every timer due at `now` (app completions, DTMF, hangups, app starts, linger).
    pub fn run_due(&mut self, now: Instant) {
        let mut guard = 0u32;
        while self.close.is_none() {
            let Some((t, which)) = self.next_timer() else {
                break;
            };
            if t > now {
                break;
            }
            guard += 1;
            if guard > 100_000 {
                self.tr
                    .errors
                    .push("fake switch: timer loop did not settle".into());
                break;
            }
            match which {
                Timer::FirstCommand => self.close_with(CallEnd::FirstCommandTimeout),
                Timer::Safety => self.close_with(CallEnd::SafetyTimeout),
                Timer::Drop => self.close_with(CallEnd::Fault("DropAfter".into())),
                Timer::LingerClose => {
                    self.linger_close_at = None;
                    self.disconnect_and_close(now);
                }
                Timer::CallerHangup => {
                    self.caller_hangup_at = None;
                    let cause = self.s.caller_hangup_cause.clone();
                    self.hangup(now, &cause, HangupBy::Caller);
                }
                Timer::SchedHangup => {
                    if let Some((_, cause)) = self.sched_hangup.take() {
                        self.hangup(now, &cause, HangupBy::Switch("sched_hangup".into()));
                    }
                }
                Timer::TransferHangup => {
                    self.transfer_hangup_at = None;
                    self.hangup(
                        now,
                        "NORMAL_CLEARING",
                        HangupBy::Switch("the transferred call ended".into()),
                    );
                }
                Timer::Dtmf => {
                    if let Some(i) = self
                        .dtmf
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (t, _))| *t)
                        .map(|(i, _)| i)
                    {
                        let (_, digit) = self.dtmf.remove(i);
                        self.on_dtmf(now, digit);
                    }
                }
                Timer::Inject => {
                    if let Some(i) = self
                        .injected
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (t, _))| *t)
                        .map(|(i, _)| i)
                    {
                        let (_, ev) = self.injected.remove(i);
                        let tail: Vec<(&str, &str)> = ev
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        self.emit(now, &ev.name, channel::AT_EXEC, WITH_VARS, &tail);
                    }
                }
                Timer::AppDeadline => {
                    if let Some(top) = self.stack.last_mut() {
                        top.deadline = None;
                    }
                    self.on_app_deadline(now);
                }
                Timer::AppStart => {
                    self.next_start = None;
                    self.start_next(now);
                }
            }
        }
    }

    // ---------------------------------------------------------------- commands

    /// Handles one command from the controller, arrived at `now`.
    pub fn on_command(&mut self, raw: RawCommand, now: Instant) {
        let idx = self.tr.commands.len();
        let n = idx + 1;
        if idx > 0 {
            if let Some(Some(t)) = self.completed_at.get(idx - 1) {
                if *t <= now {
                    self.tr.turnarounds.push(now - *t);
                }
            }
        }
        self.tr.commands.push(Received {
            index: idx,
            at: self.since(now),
            line: raw.line.clone(),
            headers: raw.headers.clone(),
            body: raw.body.clone(),
            reply: None,
        });
        self.completed_at.push(None);

        let faults = self.s.faults.clone();
        for f in &faults {
            match f {
                Fault::DropOnCommand(k) if *k == n => {
                    self.close_with(CallEnd::Fault(format!("DropOnCommand({n})")));
                    return;
                }
                Fault::NeverReply(k) if *k == n => return,
                Fault::TruncatedFrameOnCommand(k) if *k == n => {
                    let start = self.out.len();
                    self.out.extend_from_slice(
                        b"Content-Length: 2048\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_EXECUTE_COMP",
                    );
                    self.record(now, start, Self::frame("raw"));
                    self.close_with(CallEnd::Fault(format!("TruncatedFrameOnCommand({n})")));
                    return;
                }
                _ => {}
            }
        }

        self.dispatch(idx, &raw, now);

        if self.completed_at[idx].is_none() && !self.is_execute(&raw) {
            self.completed_at[idx] = Some(now);
        }

        for f in &faults {
            match f {
                Fault::GarbageAfterCommand { n: k, bytes } if *k == n => {
                    let start = self.out.len();
                    self.out.extend_from_slice(bytes);
                    self.record(now, start, Self::frame("raw"));
                }
                Fault::HugeHeaderAfterCommand { n: k, len } if *k == n => {
                    let mut body = String::with_capacity(len + 64);
                    body.push_str("Event-Name: CHANNEL_DATA\nX-Huge: ");
                    body.extend(std::iter::repeat_n('a', *len));
                    body.push_str("\n\n");
                    let start = self.out.len();
                    wire::event_frame(&mut self.out, false, &body);
                    self.record(now, start, Self::frame("text/event-plain"));
                }
                Fault::FloodEvents {
                    after_command,
                    count,
                } if *after_command == n => {
                    self.flood_remaining += count;
                }
                _ => {}
            }
        }
        self.schedule(now);
    }

    fn is_execute(&self, raw: &RawCommand) -> bool {
        starts_with_ci(&raw.line, "sendmsg")
            && header(&raw.headers, "call-command")
                .is_some_and(|c| c.eq_ignore_ascii_case("execute"))
            && self.ch.is_up()
            && !self.transferred
    }

    fn dispatch(&mut self, idx: usize, raw: &RawCommand, now: Instant) {
        let line = raw.line.trim_end();
        let lower = line.to_ascii_lowercase();
        let starts = |p: &str| lower.starts_with(p);
        if starts("exit") || starts("...") {
            self.reply(now, idx, "+OK bye");
            if self.ch.is_up() && !self.transferred {
                self.tr.controller_left_mid_call = true;
            }
            self.disconnect_and_close(now);
        } else if starts("filter ") {
            let text = self.filter(line.get(7..).unwrap_or_default());
            self.reply(now, idx, &text);
        } else if starts("resume") {
            self.tr.resume_requested = true;
            self.ch.set_var("socket_resume", "true");
            self.reply(now, idx, "+OK");
        } else if starts("connect") {
            self.connect(now);
        } else if starts("getvar") {
            let name = line.get(6..).unwrap_or_default().trim_start();
            let name = name.split_once(' ').map(|(a, _)| a).unwrap_or(name);
            let value = if name.is_empty() || line.len() == 6 {
                None
            } else {
                self.ch.var(name).map(str::to_string)
            };
            match value {
                // The reply buffer is 512 bytes: longer values come back truncated.
                Some(v) if !v.is_empty() => {
                    let v = truncate(&v, 511).to_string();
                    self.reply(now, idx, &v)
                }
                _ => self.reply(now, idx, "-ERR command not found"),
            }
        } else if starts("myevents") {
            if self.myevents {
                self.reply(now, idx, "-ERR aready enabled.");
            } else {
                self.myevents = true;
                if lower.contains("json") {
                    self.fmt = Format::Json;
                } else if lower.contains("xml") {
                    self.tr
                        .errors
                        .push("myevents xml: XML events are not modelled; sending plain".into());
                }
                self.reply(now, idx, "+OK Events Enabled");
                if self.s.park_event && self.ch.is_up() {
                    self.emit(now, "CHANNEL_PARK", channel::AT_PARK, WITH_VARS, &[]);
                }
            }
        } else if starts("divert_events") {
            let v = lower.get(13..).unwrap_or_default().trim();
            let text = if v.is_empty() {
                "-ERR missing value."
            } else if v == "on" {
                "+OK events diverted"
            } else {
                "+OK events not diverted"
            };
            self.reply(now, idx, text);
        } else if starts("sendmsg") {
            self.sendmsg(idx, raw, now);
        } else if starts("sendevent") {
            let u = channel::new_uuid();
            self.reply(now, idx, &format!("+OK {u}"));
        } else if starts("api ") {
            // The listener writes the api reply first; whatever the command caused (events)
            // is queued and flushed after it (trace conn07: `+OK` before the playback's
            // EXECUTE_COMPLETE).
            let (body, action) = self.api(line.get(4..).unwrap_or_default().trim(), now);
            self.api_reply(now, idx, &body);
            self.api_action(now, action);
        } else if starts("bgapi ") {
            let job = header(&raw.headers, "job-uuid")
                .map(str::to_string)
                .unwrap_or_else(channel::new_uuid);
            let start = self.out.len();
            wire::bgapi_reply(&mut self.out, &job);
            let mut f = Self::frame("command/reply");
            f.text = Some(format!("+OK Job-UUID: {job}"));
            self.record(now, start, f);
            if let Some(c) = self.tr.commands.get_mut(idx) {
                c.reply = Some(format!("+OK Job-UUID: {job}"));
            }
            let cmdline = line.get(6..).unwrap_or_default().trim().to_string();
            let (result, action) = self.api(&cmdline, now);
            self.api_action(now, action);
            if self.wanted("BACKGROUND_JOB") {
                let (cmd, arg) = cmdline
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), Some(b.to_string())))
                    .unwrap_or((cmdline.clone(), None));
                let uuid = self.ch.uuid().to_string();
                let mut headers = vec![
                    ("Job-UUID", job.as_str()),
                    ("Job-Owner-UUID", uuid.as_str()),
                    ("Job-Command", cmd.as_str()),
                ];
                if let Some(a) = &arg {
                    headers.push(("Job-Command-Arg", a.as_str()));
                }
                let start = self.out.len();
                self.ch.render_global_event(
                    &mut self.out,
                    self.fmt,
                    "BACKGROUND_JOB",
                    channel::AT_API_EXEC,
                    &headers,
                    Some(&result),
                );
                let mut f = Self::frame(if self.fmt == Format::Json {
                    "text/event-json"
                } else {
                    "text/event-plain"
                });
                f.event = Some("BACKGROUND_JOB".into());
                self.record(now, start, f);
            }
        } else if starts("log") {
            let level = line.get(3..).unwrap_or_default().trim();
            let n = match level.to_ascii_lowercase().as_str() {
                "" | "debug" => Some(7),
                "info" => Some(6),
                "notice" => Some(5),
                "warning" => Some(4),
                "err" | "error" => Some(3),
                "crit" => Some(2),
                "alert" => Some(1),
                "console" => Some(0),
                other => other.parse::<u8>().ok().filter(|n| *n <= 7),
            };
            match n {
                Some(n) => {
                    self.logging = true;
                    self.reply(now, idx, &format!("+OK log level {level} [{n}]"))
                }
                None => self.reply(now, idx, "-ERR invalid log level"),
            }
        } else if starts("linger") {
            let arg = line.get(6..).unwrap_or_default().trim();
            let secs = if line.as_bytes().get(6) == Some(&b' ') && !arg.is_empty() {
                Some(atoi(arg))
            } else {
                None
            };
            match secs {
                Some(s) if s != -1 => {
                    self.linger = Some(s);
                    self.reply(now, idx, &format!("+OK will linger {s} seconds"));
                }
                _ => {
                    self.linger = Some(-1);
                    self.reply(now, idx, "+OK will linger");
                }
            }
            self.tr.linger = self.linger;
        } else if starts("nolinger") {
            self.linger = None;
            self.tr.linger = None;
            self.reply(now, idx, "+OK will not linger");
        } else if starts("nolog") {
            if self.logging {
                self.logging = false;
                self.reply(now, idx, "+OK no longer logging");
            } else {
                self.reply(now, idx, "-ERR not loging");
            }
        } else if starts("event") {
            let text = self.event_cmd(line);
            self.reply(now, idx, &text);
        } else if starts("nixevent") {
            let names: Vec<String> = line
                .split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect();
            if names.is_empty() {
                self.reply(now, idx, "-ERR no keywords supplied");
            } else {
                for n in names {
                    if n.eq_ignore_ascii_case("ALL") {
                        self.all_events = false;
                        self.extra_events.clear();
                    } else {
                        self.extra_events.remove(&n);
                        self.nixed.insert(n);
                    }
                }
                self.reply(now, idx, "+OK events nixed");
            }
        } else if starts("noevents") {
            if self.myevents || self.all_events || !self.extra_events.is_empty() {
                self.myevents = false;
                self.all_events = false;
                self.extra_events.clear();
                self.reply(now, idx, "+OK no longer listening for events");
            } else {
                self.reply(now, idx, "-ERR not listening for events");
            }
        } else {
            // `auth`, `noop` and anything unknown: FreeSWITCH's empty reply becomes this.
            self.reply(now, idx, "-ERR command not found");
        }
    }

    fn filter(&mut self, rest: &str) -> String {
        let rest = rest.trim_start();
        let (name, val) = match rest.split_once(' ') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (rest.to_string(), None),
        };
        if name.eq_ignore_ascii_case("delete") {
            if let Some(v) = val {
                let (h, hv) = match v.split_once(' ') {
                    Some((a, b)) => (a.to_string(), Some(b.to_string())),
                    None => (v, None),
                };
                if h.eq_ignore_ascii_case("all") {
                    self.filters.clear();
                } else {
                    self.filters.retain(|(fh, fv)| {
                        !(fh.eq_ignore_ascii_case(&h) && hv.as_ref().is_none_or(|x| x == fv))
                    });
                }
                return format!(
                    "+OK filter deleted. [{}][{}]",
                    h,
                    hv.unwrap_or_else(|| "(null)".into())
                );
            }
        }
        match val {
            Some(v) => {
                let (h, v) = if name.eq_ignore_ascii_case("add") {
                    match v.split_once(' ') {
                        Some((a, b)) => (a.to_string(), b.to_string()),
                        None => (v, String::new()),
                    }
                } else {
                    (name, v)
                };
                self.filters.push((h.clone(), v.clone()));
                format!("+OK filter added. [{h}]=[{v}]")
            }
            None => "-ERR invalid syntax".into(),
        }
    }

    fn event_cmd(&mut self, line: &str) -> String {
        let mut words = line.split_whitespace().skip(1).peekable();
        let mut keys = 0;
        if let Some(first) = words.peek() {
            match first.to_ascii_lowercase().as_str() {
                "plain" => {
                    self.fmt = Format::Plain;
                    words.next();
                }
                "json" => {
                    self.fmt = Format::Json;
                    words.next();
                }
                "xml" => {
                    self.tr
                        .errors
                        .push("event xml: XML events are not modelled; sending plain".into());
                    words.next();
                }
                _ => {}
            }
        }
        for w in words {
            keys += 1;
            if w.eq_ignore_ascii_case("ALL") {
                self.all_events = true;
                self.nixed.clear();
            } else {
                self.nixed.remove(w);
                self.extra_events.insert(w.to_string());
            }
        }
        if keys == 0 {
            return "-ERR no keywords supplied".into();
        }
        format!(
            "+OK event listener enabled {}",
            if self.fmt == Format::Json {
                "json"
            } else {
                "plain"
            }
        )
    }

    fn connect(&mut self, now: Instant) {
        let start = self.out.len();
        self.ch.render_connect_reply(&mut self.out);
        let mut f = Self::frame("command/reply");
        f.event = Some("CHANNEL_DATA".into());
        f.text = Some("+OK\n".into());
        self.record(now, start, f);
        if let Some(c) = self.tr.commands.last_mut() {
            c.reply = Some("+OK\n".into());
        }
        if self.start.is_some() {
            return;
        }
        self.start = Some(now);
        self.tr.connected_at = Some(self.since(now));
        self.caller_hangup_at = self.s.hangup_after.map(|d| after(now, d));
        for f in &self.s.faults {
            if let Fault::DropAfter(d) = f {
                self.drop_at = Some(after(now, *d));
            }
        }
        for d in self.s.dtmf.clone() {
            match d.at {
                DtmfAt::CallTime(t) => self.dtmf.push((after(now, t), d.digit)),
                at @ DtmfAt::AppStart { .. } => self.anchored.push((at, Scripted::Dtmf(d.digit))),
            }
        }
        for e in self.s.events.clone() {
            match &e.at {
                DtmfAt::CallTime(t) => self.injected.push((after(now, *t), e)),
                DtmfAt::AppStart { .. } => self.anchored.push((e.at.clone(), Scripted::Event(e))),
            }
        }
    }

    fn sendmsg(&mut self, idx: usize, raw: &RawCommand, now: Instant) {
        let target = raw.line.get(7..).unwrap_or_default().trim();
        let target = if target.is_empty() {
            header(&raw.headers, "session-id").unwrap_or_default()
        } else {
            target
        };
        if !target.is_empty() && target != self.ch.uuid() {
            self.reply(now, idx, &format!("-ERR invalid session id [{target}]"));
            return;
        }
        // Async mode: queued, `+OK` at once, even for an unknown app or a dead channel.
        self.reply(now, idx, "+OK");
        let dead = !self.ch.is_up() || self.transferred;
        let cc = header(&raw.headers, "call-command").unwrap_or_default();
        if cc.eq_ignore_ascii_case("execute") {
            let Some(app) = header(&raw.headers, "execute-app-name").filter(|a| !a.is_empty())
            else {
                self.tr.errors.push(format!(
                    "command {}: execute without execute-app-name",
                    idx + 1
                ));
                return;
            };
            let arg = match header(&raw.headers, "execute-app-arg") {
                Some(a) if !a.is_empty() => a.to_string(),
                _ => {
                    let ct = header(&raw.headers, "content-type");
                    match (&raw.body, ct) {
                        (Some(b), None) => b.clone(),
                        (Some(b), Some(ct)) if ct.eq_ignore_ascii_case("text/plain") => b.clone(),
                        _ => String::new(),
                    }
                }
            };
            let ex = Exec {
                cmd: idx,
                app: app.to_string(),
                arg,
                uuid: header(&raw.headers, "event-uuid").map(str::to_string),
                uuid_name: header(&raw.headers, "event-uuid-name").map(str::to_string),
                lock: apps::truthy(header(&raw.headers, "event-lock")),
                loops: header(&raw.headers, "loops")
                    .map(atoi)
                    .filter(|l| *l != 0)
                    .unwrap_or(1)
                    .clamp(-1, 10_000),
            };
            if dead {
                self.tr.skipped.push((idx, "channel is gone".into()));
                return;
            }
            if apps::truthy(header(&raw.headers, "event-lock-pri")) {
                self.queue.push_front(Queued::Execute(ex));
            } else {
                self.queue.push_back(Queued::Execute(ex));
            }
        } else if cc.eq_ignore_ascii_case("hangup") {
            let cause = header(&raw.headers, "hangup-cause")
                .and_then(apps::cause_name)
                .unwrap_or_else(|| "NORMAL_CLEARING".into());
            if dead {
                self.tr.skipped.push((idx, "channel is gone".into()));
                return;
            }
            self.queue.push_back(Queued::Hangup { cmd: idx, cause });
        } else if cc.is_empty() {
            self.tr
                .errors
                .push(format!("command {}: sendmsg without call-command", idx + 1));
        } else {
            // nomedia, unicast, xferext: accepted and not modelled.
            self.tr.errors.push(format!(
                "command {}: call-command `{cc}` is not modelled by the fake",
                idx + 1
            ));
        }
    }

    fn api_action(&mut self, now: Instant, action: ApiAction) {
        match action {
            ApiAction::None => {}
            ApiAction::Break { all } => self.break_apps(now, all),
            ApiAction::Kill(cause) => self.hangup(now, &cause, HangupBy::Controller),
            ApiAction::Answer => self.do_answer(now),
            ApiAction::Transfer(dest) => {
                self.interrupt_for_transfer(now);
                self.do_transfer(now, &dest);
            }
        }
    }

    /// Runs an `api` command: its response body, and what it does once the reply is out.
    fn api(&mut self, cmdline: &str, now: Instant) -> (String, ApiAction) {
        let (cmd, arg) = cmdline
            .split_once(' ')
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((cmdline, ""));
        let mut args = arg.split_whitespace();
        let ours = |u: Option<&str>, me: &str| u == Some(me);
        let me = self.ch.uuid().to_string();
        let none = ApiAction::None;
        let no_channel = || ("-ERR No such channel!\n".to_string(), ApiAction::None);
        match cmd {
            "uptime" => (format!("{}\n", self.since(now).as_secs()), none),
            "status" => (
                format!(
                    "UP 0 years, 0 days, 0 hours, 0 minutes, {} seconds, 0 milliseconds, 0 microseconds\nFreeSWITCH (Version 1.10.12-release  64bit) is ready\n1 session(s) since startup\n1 session(s) - peak 1, last 5min 1 \n0 session(s) per Sec out of max 30, peak 1, last 5min 1 \n1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n",
                    self.since(now).as_secs()
                ),
                none,
            ),
            "echo" => (arg.to_string(), none),
            "uuid_exists" => {
                let v = if ours(args.next(), &me) {
                    "true"
                } else {
                    "false"
                };
                (v.to_string(), none)
            }
            "uuid_break" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                let all = args.next().is_some_and(|a| a.eq_ignore_ascii_case("all"));
                ("+OK\n".into(), ApiAction::Break { all })
            }
            "uuid_kill" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                let cause = args
                    .next()
                    .and_then(apps::cause_name)
                    .unwrap_or_else(|| "NORMAL_CLEARING".into());
                ("+OK\n".into(), ApiAction::Kill(cause))
            }
            "uuid_getvar" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                match args.next().and_then(|v| self.ch.var(v)) {
                    Some(v) => (v.to_string(), none),
                    None => ("_undef_".into(), none),
                }
            }
            "uuid_setvar" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                let Some(name) = args.next() else {
                    return ("-USAGE: <uuid> <var> [value]\n".into(), none);
                };
                let value: Vec<&str> = args.collect();
                self.ch.set_var(name, &value.join(" "));
                ("+OK\n".into(), none)
            }
            "uuid_answer" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                ("+OK\n".into(), ApiAction::Answer)
            }
            "uuid_transfer" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                let mut dest: Vec<&str> = args.collect();
                if dest.first().is_some_and(|d| *d == "-bleg" || *d == "-both") {
                    dest.remove(0);
                }
                if dest.is_empty() {
                    return (
                        "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
                            .into(),
                        none,
                    );
                }
                ("+OK\n".into(), ApiAction::Transfer(dest.join(" ")))
            }
            "uuid_hold" => {
                // `uuid_hold [off|toggle] <uuid>`.
                let mut u = args.next();
                if u.is_some_and(|a| a == "off" || a == "toggle") {
                    u = args.next();
                }
                if !ours(u, &me) {
                    return no_channel();
                }
                ("+OK Success\n".into(), none)
            }
            "uuid_broadcast" => {
                // `uuid_broadcast <uuid> <path|app::args> [aleg|bleg|both]`: queued on the
                // channel like a sendmsg execute (random Application-UUID).
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                let rest: Vec<&str> = args.collect();
                let (what, legs) = match rest.split_last() {
                    Some((l, head)) if matches!(*l, "aleg" | "bleg" | "both" | "holdb") => {
                        (head.join(" "), *l)
                    }
                    _ => (rest.join(" "), "aleg"),
                };
                let what = what.trim_matches('\'').to_string();
                if what.is_empty() {
                    return ("-USAGE: <uuid> <path> [aleg|bleg|both]\n".into(), none);
                }
                if legs != "bleg" && self.ch.is_up() && !self.transferred {
                    let (app, arg) = match what.split_once("::") {
                        Some((a, b)) => (a.to_string(), b.to_string()),
                        None => ("playback".to_string(), what.clone()),
                    };
                    let cmd = self.tr.commands.len().saturating_sub(1);
                    self.queue.push_back(Queued::Execute(Exec {
                        cmd,
                        app,
                        arg,
                        uuid: None,
                        uuid_name: None,
                        lock: true,
                        loops: 1,
                    }));
                    self.schedule(now);
                }
                ("+OK Message sent\n".into(), none)
            }
            "uuid_send_dtmf" | "uuid_record" | "uuid_displace" | "uuid_park" => {
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                ("+OK Success\n".into(), none)
            }
            "show" if arg.starts_with("channels") => {
                // One row: this channel (the columns `show channels` prints, abridged values).
                let up = self.ch.is_up();
                let row = if up {
                    format!(
                        "{me},inbound,,{},{},CS_EXECUTE,{},{},127.0.0.1,{},{},,XML,{},PCMU,8000,64000,PCMU,8000,64000,,vm,,,,{},,,,{me},,,,,,,,\n",
                        self.since(now).as_secs(),
                        self.ch.channel_name(),
                        self.s.channel.caller_id_name,
                        self.s.channel.caller_id_number,
                        self.s.channel.destination_number,
                        self.ch.var("current_application").unwrap_or_default(),
                        self.s.channel.context,
                        if self.ch.is_answered() {
                            "ACTIVE"
                        } else {
                            "RINGING"
                        },
                    )
                } else {
                    String::new()
                };
                (
                    format!(
                        "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate,callee_name,callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,initial_cid_name,initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context\n{row}\n{} total.\n",
                        usize::from(up)
                    ),
                    none,
                )
            }
            "valet_info" => {
                // Empty lots: nobody else is parked on a one-channel switch.
                let lot = args.next().unwrap_or("default");
                (
                    format!("<lots>\n  <lot name=\"{lot}\">\n  </lot>\n</lots>\n"),
                    none,
                )
            }
            "sched_hangup" => {
                // `sched_hangup +<secs> <uuid> [cause]` (reply text not verified on a switch).
                let when = args.next().unwrap_or_default();
                if !ours(args.next(), &me) {
                    return no_channel();
                }
                let secs = atoi(when.trim_start_matches('+')).max(0) as u64;
                let cause = args
                    .next()
                    .and_then(apps::cause_name)
                    .unwrap_or_else(|| "ALLOTTED_TIMEOUT".into());
                self.sched_hangup = Some((after(now, Duration::from_secs(secs)), cause));
                ("+OK\n".into(), none)
            }
            other => (format!("-ERR {other} Command not found!\n"), none),
        }
    }

    // ---------------------------------------------------------------- the park loop

    fn can_dequeue(&self) -> bool {
        match self.stack.last() {
            None => true,
            // A running app without event-lock parses queued events every frame: the next
            // command runs nested inside it (A5).
            Some(top) => !top.ex.lock && !matches!(top.kind, Kind::Instant) && !top.silent,
        }
    }

    /// A command arrived: the park loop notices it on its next tick (`app_start_delay`).
    fn schedule(&mut self, now: Instant) {
        self.schedule_after(now, self.s.app_start_delay);
    }

    /// An app finished: `switch_ivr_parse_all_events` runs the commands already queued back to
    /// back (trace conn05: three pipelined executes start in the same millisecond).
    fn schedule_now(&mut self, now: Instant) {
        self.schedule_after(now, Duration::ZERO);
    }

    fn schedule_after(&mut self, now: Instant, delay: Duration) {
        if self.next_start.is_none()
            && self.start.is_some()
            && self.ch.is_up()
            && !self.transferred
            && !self.queue.is_empty()
            && self.can_dequeue()
        {
            self.next_start = Some(after(now, delay));
        }
    }

    fn start_next(&mut self, now: Instant) {
        if !self.can_dequeue() || !self.ch.is_up() || self.transferred {
            return;
        }
        match self.queue.pop_front() {
            Some(Queued::Execute(ex)) => self.start_app(now, ex, 1),
            Some(Queued::Hangup { cmd, cause }) => {
                self.completed_at[cmd].get_or_insert(now);
                self.hangup(now, &cause, HangupBy::Controller);
            }
            None => {}
        }
        self.schedule_now(now);
    }

    fn exec_tail(
        app: &str,
        data: &str,
        uuid: &str,
        uuid_name: Option<&str>,
        response: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut t = vec![("Application", app.to_string())];
        if !data.is_empty() {
            t.push(("Application-Data", data.to_string()));
        }
        if let Some(r) = response {
            t.push(("Application-Response", r.to_string()));
        }
        t.push(("Application-UUID", uuid.to_string()));
        if let Some(n) = uuid_name {
            t.push(("Application-UUID-Name", n.to_string()));
        }
        t
    }

    fn emit_tail(
        &mut self,
        now: Instant,
        name: &str,
        at: Calling,
        tail: &[(&'static str, String)],
    ) {
        let t: Vec<(&str, &str)> = tail.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.emit(now, name, at, WITH_VARS, &t);
    }

    fn pre_answer(&mut self, now: Instant) {
        if self.ch.begin_pre_answer() {
            self.emit(
                now,
                "CHANNEL_PROGRESS_MEDIA",
                channel::AT_PRE_ANSWER,
                WITH_VARS,
                &[],
            );
            self.ch.end_pre_answer();
        }
    }

    fn do_answer(&mut self, now: Instant) {
        if self.ch.kind() == ChannelKind::Sip && !self.ch.has_media() {
            self.pre_answer(now);
        }
        if self.ch.begin_answer() {
            self.emit(now, "CHANNEL_ANSWER", channel::AT_ANSWER, WITH_VARS, &[]);
            self.ch.end_answer();
        }
    }

    fn start_app(&mut self, now: Instant, ex: Exec, loop_no: i64) {
        if !self.ch.is_up() || self.transferred {
            self.tr.skipped.push((ex.cmd, "channel is gone".into()));
            return;
        }
        if loop_no == 1 {
            if let Some(u) = &ex.uuid {
                self.ch.set_var("app_uuid", u);
            }
        }
        self.ch.set_var("current_loop", &loop_no.to_string());
        self.ch.set_var("total_loops", &ex.loops.to_string());
        if !self.known.contains(&ex.app) {
            // switch_core_session_execute_application: no such app -> hang up, no events.
            self.tr
                .skipped
                .push((ex.cmd, format!("unknown app `{}`", ex.app)));
            self.hangup(
                now,
                "DESTINATION_OUT_OF_ORDER",
                HangupBy::Switch(format!("unknown app `{}`", ex.app)),
            );
            return;
        }
        if MEDIA_APPS.contains(&ex.app.as_str()) && !self.ch.has_media() {
            self.pre_answer(now);
        }
        self.ch.unset_var("app_uuid");
        let app_uuid = ex.uuid.clone().unwrap_or_else(channel::new_uuid);
        let data = {
            let ch = &self.ch;
            apps::expand_vars(&ex.arg, |k| ch.var(k))
        };
        self.ch.set_var("current_application", &ex.app);
        self.ch.set_var("current_application_data", &data);
        self.ch.unset_var("current_application_response");
        let count = {
            let c = self.app_counts.entry(ex.app.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let mut i = 0;
        while i < self.anchored.len() {
            let hit = matches!(&self.anchored[i].0,
                DtmfAt::AppStart { app, nth, .. } if *app == ex.app && *nth == count);
            if hit {
                let (at, what) = self.anchored.remove(i);
                if let DtmfAt::AppStart { offset, .. } = at {
                    match what {
                        Scripted::Dtmf(d) => self.dtmf.push((after(now, offset), d)),
                        Scripted::Event(e) => self.injected.push((after(now, offset), e)),
                    }
                }
            } else {
                i += 1;
            }
        }
        self.tr.apps.push(ExecutedApp {
            app: ex.app.clone(),
            arg: data.clone(),
            app_uuid: app_uuid.clone(),
            started: self.since(now),
            completed: None,
            response: None,
        });
        let tail = Self::exec_tail(&ex.app, &data, &app_uuid, ex.uuid_name.as_deref(), None);
        self.emit_tail(now, "CHANNEL_EXECUTE", channel::AT_EXEC, &tail);
        // FreeSWITCH sets these two again once the app runs (their order flips in COMPLETE).
        self.ch.set_var("current_application_data", &data);
        self.ch.set_var("current_application", &ex.app);
        self.last_app = Some((ex.app.clone(), data.clone()));

        // Pause the app this one nests into.
        if let Some(parent) = self.stack.last_mut() {
            parent.paused_left = Some(parent.deadline.map(|d| d.saturating_duration_since(now)));
            parent.deadline = None;
            parent.paused_since = Some(now);
        }
        let silent = self
            .s
            .faults
            .iter()
            .any(|f| matches!(f, Fault::NoExecuteComplete { app } if *app == ex.app));
        let tr_index = self.tr.apps.len() - 1;
        self.stack.push(Running {
            ex,
            data,
            app_uuid,
            started: now,
            deadline: None,
            paused_left: None,
            paused_since: None,
            paused_total: Duration::ZERO,
            loop_no,
            kind: Kind::Instant,
            tr_index,
            silent,
        });
        self.run_app_body(now);
    }

    /// The body of the app on top of the stack, right after its CHANNEL_EXECUTE.
    fn run_app_body(&mut self, now: Instant) {
        let Some(top) = self.stack.last() else {
            return;
        };
        let app = top.ex.app.clone();
        let data = top.data.clone();
        let silent = top.silent;
        let media = self.s.media_time;
        let set_kind = |this: &mut Self, kind: Kind, deadline: Option<Instant>| {
            if let Some(top) = this.stack.last_mut() {
                top.kind = kind;
                top.deadline = if silent { None } else { deadline };
            }
        };
        match app.as_str() {
            "answer" => {
                self.do_answer(now);
                self.complete_top(now, None);
            }
            "pre_answer" => {
                self.pre_answer(now);
                self.complete_top(now, None);
            }
            "ring_ready" => {
                if self.ch.ring_ready() {
                    self.emit(
                        now,
                        "CHANNEL_PROGRESS",
                        channel::AT_RING_READY,
                        WITH_VARS,
                        &[],
                    );
                }
                self.complete_top(now, None);
            }
            "playback" | "endless_playback" => {
                if self.s.file_missing(&data) || data.is_empty() {
                    self.complete_top(now, Some("FILE NOT FOUND"));
                    return;
                }
                self.ch.unset_var("playback_terminator_used");
                self.playback_event(now, "PLAYBACK_START", &data);
                let deadline = if app == "endless_playback" {
                    None
                } else {
                    Some(after(now, self.s.file_time(&data)))
                };
                set_kind(self, Kind::Playback, deadline);
            }
            "speak" | "say" | "phrase" | "gentones" => {
                let d = self
                    .s
                    .app_time(&app)
                    .unwrap_or_else(|| self.s.file_time(&data));
                set_kind(self, Kind::Prompt, Some(after(now, d)));
            }
            "sleep" => {
                let ms = data.trim().parse::<u64>().unwrap_or(0);
                set_kind(
                    self,
                    Kind::Timed,
                    Some(after(now, Duration::from_millis(ms))),
                );
            }
            "conference" | "record" | "wait_for_silence" | "detect_speech" => {
                let mut d = self.s.app_time(&app).unwrap_or(media);
                if app == "record" {
                    if let Some(limit) = data.split_whitespace().nth(1).map(atoi) {
                        if limit > 0 {
                            d = d.min(Duration::from_secs(limit as u64));
                        }
                    }
                }
                set_kind(self, Kind::Timed, Some(after(now, d)));
            }
            "park" | "echo" | "valet_park" => {
                let d = self.s.app_time(&app).map(|d| after(now, d));
                set_kind(self, Kind::Block, d);
            }
            "set" | "export" => {
                let (k, v) = data.split_once('=').unwrap_or((data.as_str(), ""));
                let k = k.strip_prefix("nolocal:").unwrap_or(k);
                if !k.is_empty() {
                    self.ch.set_var(k, v);
                    if app == "export" {
                        let list = match self.ch.var("export_vars") {
                            Some(l) if !l.is_empty() => format!("{l},{k}"),
                            _ => k.to_string(),
                        };
                        self.ch.set_var("export_vars", &list);
                    }
                }
                self.complete_top(now, None);
            }
            "unset" => {
                self.ch.unset_var(data.trim());
                self.complete_top(now, None);
            }
            "multiset" => {
                let (delim, rest) = match data.strip_prefix("^^") {
                    Some(r) => {
                        let mut c = r.chars();
                        let d = c.next().unwrap_or(' ');
                        (d, c.as_str().to_string())
                    }
                    None => (' ', data.clone()),
                };
                for pair in rest.split(delim).filter(|p| !p.is_empty()) {
                    if let Some((k, v)) = pair.split_once('=') {
                        self.ch.set_var(k, v);
                    }
                }
                self.complete_top(now, None);
            }
            "read" | "play_and_get_digits" => {
                let pagd = app == "play_and_get_digits";
                let parsed = if pagd {
                    apps::parse_pagd(&data)
                } else {
                    apps::parse_read(&data)
                };
                match parsed {
                    Err(e) => {
                        self.tr.errors.push(format!("{app}: {e}"));
                        self.complete_top(now, None);
                    }
                    Ok(c) => {
                        self.ch.unset_var("read_terminator_used");
                        let prompt = self.prompt_time(&c.file);
                        let regex = c.regex.as_deref().and_then(|r| regex::Regex::new(r).ok());
                        let st = ReadState {
                            c,
                            pagd,
                            regex,
                            digits: String::new(),
                            try_no: 0,
                            phase: ReadPhase::Prompt,
                        };
                        set_kind(self, Kind::Read(Box::new(st)), Some(after(now, prompt)));
                    }
                }
            }
            "bridge" => {
                if data.is_empty() {
                    self.complete_top(now, None);
                    return;
                }
                let outcome = self.s.bridge_outcome(&data);
                let ring = match &outcome {
                    BridgeOutcome::Answered { ring, .. } | BridgeOutcome::Failed { ring, .. } => {
                        *ring
                    }
                };
                let st = BridgeState {
                    outcome,
                    talking: false,
                    callee: channel::new_uuid(),
                };
                set_kind(self, Kind::Bridge(Box::new(st)), Some(after(now, ring)));
            }
            "hangup" => {
                let cause = if data.trim().is_empty() {
                    "NORMAL_CLEARING".to_string()
                } else {
                    apps::cause_name(&data).unwrap_or_else(|| {
                        self.tr.errors.push(format!(
                            "hangup: unknown cause `{data}`; using NORMAL_CLEARING"
                        ));
                        "NORMAL_CLEARING".into()
                    })
                };
                self.hangup(now, &cause, HangupBy::Controller);
            }
            "respond" => {
                let code = data
                    .split_whitespace()
                    .next()
                    .and_then(|c| c.parse::<u16>().ok())
                    .unwrap_or(0);
                match code {
                    180 => {
                        if self.ch.ring_ready() {
                            self.emit(
                                now,
                                "CHANNEL_PROGRESS",
                                channel::AT_RING_READY,
                                WITH_VARS,
                                &[],
                            );
                        }
                        self.complete_top(now, None);
                    }
                    183 => {
                        self.pre_answer(now);
                        self.complete_top(now, None);
                    }
                    200..=299 => {
                        self.do_answer(now);
                        self.complete_top(now, None);
                    }
                    300.. => {
                        let cause = apps::sip_cause(code);
                        self.hangup(now, &cause, HangupBy::Controller);
                    }
                    _ => self.complete_top(now, None),
                }
            }
            "transfer" => {
                let dest = data.trim().to_string();
                self.complete_top(now, None);
                if !dest.is_empty() && self.ch.is_up() {
                    self.interrupt_for_transfer(now);
                    self.do_transfer(now, &dest);
                }
            }
            "sched_hangup" => {
                let mut w = data.split_whitespace();
                let secs = w
                    .next()
                    .map(|s| atoi(s.trim_start_matches('+')))
                    .unwrap_or(0)
                    .max(0) as u64;
                let cause = w
                    .next()
                    .and_then(apps::cause_name)
                    .unwrap_or_else(|| "ALLOTTED_TIMEOUT".into());
                self.sched_hangup = Some((after(now, Duration::from_secs(secs)), cause));
                self.complete_top(now, None);
            }
            "break" => {
                self.complete_top(now, None);
            }
            _ => {
                // record_session, log, info, noop, intercept, ... : instant, `_none_`.
                let d = self.s.app_time(&app);
                match d {
                    Some(d) => set_kind(self, Kind::Timed, Some(after(now, d))),
                    None => self.complete_top(now, None),
                }
            }
        }
    }

    fn prompt_time(&self, file: &str) -> Duration {
        if file.is_empty() || self.s.file_missing(file) {
            Duration::ZERO
        } else {
            self.s.file_time(file)
        }
    }

    fn playback_event(&mut self, now: Instant, name: &str, file: &str) {
        if self.wanted(name) {
            self.emit(
                now,
                name,
                channel::AT_PLAYBACK,
                WITH_VARS,
                &[
                    ("Playback-File-Type", "native"),
                    ("Playback-File-Path", file),
                ],
            );
        }
    }

    fn set_playback_vars(&mut self, now: Instant) {
        let Some(top) = self.stack.last() else {
            return;
        };
        let ms = top.elapsed(now).as_millis() as u64;
        let samples = ms * 8;
        let file = top.data.clone();
        self.ch
            .set_var("playback_last_offset_pos", &samples.to_string());
        self.ch
            .set_var("playback_seconds", &(ms / 1000).to_string());
        self.ch.set_var("playback_ms", &ms.to_string());
        self.ch.set_var("playback_samples", &samples.to_string());
        self.playback_event(now, "PLAYBACK_STOP", &file);
    }

    /// Completes the app on top of the stack: EXECUTE_COMPLETE, then loops, the parent resumes,
    /// the next queued command may start.
    fn complete_top(&mut self, now: Instant, response: Option<&str>) {
        let Some(run) = self.complete_top_inner(now, response) else {
            return;
        };
        self.ch.sip_ack();
        // `loops: N` repeats the app inside switch_ivr_parse_event; an iteration under 0.5 s
        // ends the loop early (A5).
        let more = run.ex.loops == -1 || run.loop_no < run.ex.loops;
        if more
            && self.ch.is_up()
            && !self.transferred
            && run.elapsed(now) >= Duration::from_millis(500)
        {
            self.start_app(now, run.ex, run.loop_no + 1);
            return;
        }
        self.completed_at[run.ex.cmd] = Some(now);
        self.resume_parent(now);
        self.schedule_now(now);
    }

    fn resume_parent(&mut self, now: Instant) {
        if let Some(parent) = self.stack.last_mut() {
            if let Some(left) = parent.paused_left.take() {
                parent.deadline = left.map(|l| after(now, l));
                if let Some(since) = parent.paused_since.take() {
                    parent.paused_total += now.saturating_duration_since(since);
                }
            }
        }
    }

    fn complete_top_inner(&mut self, now: Instant, response: Option<&str>) -> Option<Running> {
        let run = self.stack.pop()?;
        if let Some(r) = response {
            self.ch.set_var("current_application_response", r);
        }
        let resp = self
            .ch
            .var("current_application_response")
            .unwrap_or("_none_")
            .to_string();
        if !run.silent {
            let tail = Self::exec_tail(
                &run.ex.app,
                &run.data,
                &run.app_uuid,
                run.ex.uuid_name.as_deref(),
                Some(&resp),
            );
            self.emit_tail(
                now,
                "CHANNEL_EXECUTE_COMPLETE",
                channel::AT_EXEC_DONE,
                &tail,
            );
            if let Some(a) = self.tr.apps.get_mut(run.tr_index) {
                a.completed = Some(now.saturating_duration_since(self.t0));
                a.response = Some(resp);
            }
        }
        self.ch.unset_var("current_loop");
        self.ch.unset_var("total_loops");
        Some(run)
    }

    fn on_app_deadline(&mut self, now: Instant) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        match &mut top.kind {
            Kind::Playback => {
                self.set_playback_vars(now);
                self.complete_top(now, Some("FILE PLAYED"));
            }
            Kind::Prompt => {
                let phrase = top.ex.app == "phrase";
                self.complete_top(now, phrase.then_some("PHRASE PLAYED"));
            }
            Kind::Timed | Kind::Block | Kind::Instant => {
                if top.ex.app == "record" {
                    let ms = top.elapsed(now).as_millis() as u64;
                    self.ch.set_var("record_ms", &ms.to_string());
                    self.ch.set_var("record_seconds", &(ms / 1000).to_string());
                    self.ch.set_var("record_samples", &(ms * 8).to_string());
                }
                self.complete_top(now, None);
            }
            Kind::Read(st) => match st.phase {
                ReadPhase::Prompt => {
                    st.phase = ReadPhase::Wait;
                    top.deadline = Some(after(now, st.c.timeout));
                }
                ReadPhase::Wait => self.finish_try(now, None, true),
                ReadPhase::Invalid => {
                    st.phase = ReadPhase::Prompt;
                    st.digits.clear();
                    let file = st.c.file.clone();
                    let t = self.prompt_time(&file);
                    if let Some(top) = self.stack.last_mut() {
                        top.deadline = Some(after(now, t));
                    }
                }
            },
            Kind::Bridge(_) => self.bridge_step(now),
        }
    }

    fn finish_try(&mut self, now: Instant, terminator: Option<char>, timed_out: bool) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let Kind::Read(st) = &mut top.kind else {
            return;
        };
        let n = st.digits.len();
        let digits = st.digits.clone();
        let c = st.c.clone();
        if let Some(t) = terminator {
            self.ch.set_var("read_terminator_used", &t.to_string());
        }
        if !st.pagd {
            let result = if n >= c.min && (n > 0 || c.min == 0) {
                "success"
            } else if timed_out {
                "timeout"
            } else {
                "failure"
            };
            self.ch.set_var(&c.var, &digits);
            self.ch.set_var("read_result", result);
            self.complete_top(now, None);
            return;
        }
        let valid = n >= c.min
            && n <= c.max
            && n > 0
            && st.regex.as_ref().is_none_or(|r| r.is_match(&digits));
        if valid {
            self.ch.set_var(&c.var, &digits);
            self.ch.set_var("read_result", "success");
            self.complete_top(now, None);
            return;
        }
        if n > 0 {
            self.ch.set_var(&format!("{}_invalid", c.var), &digits);
        }
        st.try_no += 1;
        st.digits.clear();
        if st.try_no < c.tries {
            let invalid = c.invalid_file.clone();
            if n > 0 && !invalid.is_empty() && invalid != "silence_stream://0" {
                st.phase = ReadPhase::Invalid;
                let t = self.prompt_time(&invalid);
                if let Some(top) = self.stack.last_mut() {
                    top.deadline = Some(after(now, t));
                }
            } else {
                st.phase = ReadPhase::Prompt;
                let t = self.prompt_time(&c.file);
                if let Some(top) = self.stack.last_mut() {
                    top.deadline = Some(after(now, t));
                }
            }
            return;
        }
        let result = if n == 0 && timed_out {
            "timeout"
        } else {
            "failure"
        };
        self.ch.unset_var(&c.var);
        self.ch.set_var("read_result", result);
        self.complete_top(now, None);
        if let Some(ext) = c.transfer_on_failure {
            if self.ch.is_up() {
                self.interrupt_for_transfer(now);
                self.do_transfer(now, &ext);
            }
        }
    }

    fn bridge_step(&mut self, now: Instant) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let Kind::Bridge(st) = &mut top.kind else {
            return;
        };
        let callee = st.callee.clone();
        if !st.talking {
            match st.outcome.clone() {
                BridgeOutcome::Failed { cause, .. } => {
                    let cause = apps::cause_name(&cause).unwrap_or(cause);
                    self.ch.set_var("originate_disposition", &cause);
                    self.ch.set_var("originate_failed_cause", &cause);
                    self.ch.set_var("DIALSTATUS", &apps::dialstatus(&cause));
                    let hang = apps::bridge_failure_hangs_up(
                        &cause,
                        self.ch.var("continue_on_fail"),
                        self.ch.var("failure_causes"),
                    );
                    if hang {
                        self.hangup(
                            now,
                            &cause,
                            HangupBy::Switch(format!("bridge failed: {cause}")),
                        );
                    } else {
                        self.complete_top(now, None);
                    }
                }
                BridgeOutcome::Answered { talk, .. } => {
                    if !self.ch.is_answered() {
                        self.do_answer(now);
                    }
                    self.ch.set_var("originate_disposition", "SUCCESS");
                    self.ch.set_var("DIALSTATUS", "SUCCESS");
                    self.ch.set_var("last_bridge_to", &callee);
                    self.ch.set_var("bridge_channel", "sofia/internal/callee");
                    self.ch.set_var("bridge_uuid", &callee);
                    self.ch.set_var("signal_bond", &callee);
                    self.ch.mark_bridged();
                    let me = self.ch.uuid().to_string();
                    self.emit(
                        now,
                        "CHANNEL_BRIDGE",
                        channel::AT_BRIDGE,
                        WITH_VARS,
                        &[
                            ("Bridge-A-Unique-ID", &me),
                            ("Bridge-B-Unique-ID", &callee),
                            ("Other-Type", "originatee"),
                            ("Other-Leg-Unique-ID", &callee),
                        ],
                    );
                    if let Some(top) = self.stack.last_mut() {
                        if let Kind::Bridge(st) = &mut top.kind {
                            st.talking = true;
                        }
                        top.deadline = Some(after(now, talk));
                    }
                }
            }
            return;
        }
        if let BridgeOutcome::Answered {
            hangup_by, cause, ..
        } = st.outcome.clone()
        {
            let cause = apps::cause_name(&cause).unwrap_or(cause);
            match hangup_by {
                Side::Callee => {
                    st.talking = false;
                    self.end_bridge(now, &cause);
                    if apps::truthy(self.ch.var("hangup_after_bridge")) {
                        self.hangup(now, &cause, HangupBy::Switch("hangup_after_bridge".into()));
                    } else {
                        self.complete_top(now, None);
                    }
                }
                Side::Caller => {
                    self.hangup_by_caller = true;
                    self.hangup(now, &cause, HangupBy::Caller);
                }
            }
        }
    }

    fn end_bridge(&mut self, now: Instant, cause: &str) {
        self.ch.set_var("bridge_hangup_cause", cause);
        self.ch.set_var("last_bridge_hangup_cause", cause);
        self.ch.set_var("last_bridge_role", "originator");
        let me = self.ch.uuid().to_string();
        let callee = self.ch.var("bridge_uuid").unwrap_or_default().to_string();
        self.emit(
            now,
            "CHANNEL_UNBRIDGE",
            channel::AT_BRIDGE,
            WITH_VARS,
            &[
                ("Bridge-A-Unique-ID", &me),
                ("Bridge-B-Unique-ID", &callee),
                ("Other-Type", "originatee"),
                ("Other-Leg-Unique-ID", &callee),
            ],
        );
    }

    // ---------------------------------------------------------------- DTMF, break, transfer

    fn on_dtmf(&mut self, now: Instant, digit: char) {
        if !self.ch.is_up() {
            return;
        }
        self.tr.dtmf.push((self.since(now), digit));
        let dur = self.s.dtmf_duration_ms.to_string();
        let source = self.ch.dtmf_source();
        let d = digit.to_string();
        self.emit(
            now,
            "DTMF",
            channel::AT_DTMF,
            NO_VARS,
            &[
                ("DTMF-Digit", &d),
                ("DTMF-Duration", &dur),
                ("DTMF-Source", source),
            ],
        );
        let Some(top) = self.stack.last_mut() else {
            // Parked between apps: the park loop dequeues the digit and drops it (A7).
            return;
        };
        if top.silent {
            return;
        }
        match &mut top.kind {
            Kind::Playback => {
                let terms = match self.ch.var("playback_terminators") {
                    None => "*".to_string(),
                    Some(t) if t.eq_ignore_ascii_case("none") => String::new(),
                    Some(t) if t.eq_ignore_ascii_case("any") => "0123456789*#ABCD".into(),
                    Some(t) => t.to_string(),
                };
                if terms.contains(digit) {
                    self.ch.set_var("playback_terminator_used", &d);
                    self.set_playback_vars(now);
                    self.complete_top(now, Some("FILE PLAYED"));
                }
            }
            Kind::Read(st) => {
                if st.phase == ReadPhase::Invalid {
                    return;
                }
                if st.c.terminators.contains(digit) {
                    self.finish_try(now, Some(digit), false);
                    return;
                }
                st.digits.push(digit);
                if st.digits.len() >= st.c.max {
                    self.finish_try(now, None, false);
                } else {
                    st.phase = ReadPhase::Wait;
                    top.deadline = Some(after(now, st.c.digit_timeout));
                }
            }
            _ => {}
        }
    }

    fn break_apps(&mut self, now: Instant, all: bool) {
        if !self.ch.is_up() {
            return;
        }
        if all {
            while let Some(q) = self.queue.pop_front() {
                self.tr
                    .skipped
                    .push((q.cmd(), "flushed by uuid_break all".into()));
            }
            self.next_start = None;
        }
        self.break_top(now);
        if all {
            while !self.stack.is_empty() && self.ch.is_up() {
                let before = self.stack.len();
                self.break_top(now);
                if self.stack.len() >= before {
                    break;
                }
            }
        }
    }

    fn break_top(&mut self, now: Instant) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        if top.silent {
            return;
        }
        match &mut top.kind {
            Kind::Playback => {
                // Trace conn07: a playback stopped by uuid_break answers FILE PLAYED.
                self.set_playback_vars(now);
                self.complete_top(now, Some("FILE PLAYED"));
            }
            Kind::Prompt | Kind::Timed | Kind::Block => self.complete_top(now, None),
            Kind::Read(st) => {
                if st.phase == ReadPhase::Prompt {
                    st.phase = ReadPhase::Wait;
                    top.deadline = Some(after(now, st.c.timeout));
                } else {
                    self.finish_try(now, None, true);
                }
            }
            Kind::Bridge(_) | Kind::Instant => {}
        }
    }

    /// CF_TRANSFER makes every running app return.
    fn interrupt_for_transfer(&mut self, now: Instant) {
        while let Some(top) = self.stack.last() {
            let resp = match top.kind {
                Kind::Playback => Some("FILE PLAYED"),
                _ => None,
            };
            if matches!(top.kind, Kind::Playback) {
                self.set_playback_vars(now);
            }
            if let Some(run) = self.complete_top_inner(now, resp) {
                self.completed_at[run.ex.cmd] = Some(now);
            }
        }
    }

    fn do_transfer(&mut self, now: Instant, dest: &str) {
        if self.transferred || !self.ch.is_up() {
            return;
        }
        self.transferred = true;
        self.tr.transferred_to = Some(dest.to_string());
        self.ch.mark_transferred();
        while let Some(q) = self.queue.pop_front() {
            self.tr
                .skipped
                .push((q.cmd(), "channel was transferred".into()));
        }
        self.next_start = None;
        self.finish_socket_app(now);
        self.transfer_hangup_at = Some(after(now, self.s.transfer_hangup_after));
    }

    // ---------------------------------------------------------------- hangup and close

    fn finish_socket_app(&mut self, now: Instant) {
        if self.socket_app_done {
            return;
        }
        self.socket_app_done = true;
        self.ch.unset_var("current_loop");
        self.ch.unset_var("total_loops");
        self.emit(now, "CHANNEL_UNPARK", channel::AT_UNPARK, WITH_VARS, &[]);
        let resp = self
            .ch
            .var("current_application_response")
            .unwrap_or("_none_")
            .to_string();
        let data = format!("{} async full", self.s.channel.socket_address);
        let uuid = channel::new_uuid();
        self.emit(
            now,
            "CHANNEL_EXECUTE_COMPLETE",
            channel::AT_EXEC_DONE,
            WITH_VARS,
            &[
                ("Application", "socket"),
                ("Application-Data", &data),
                ("Application-Response", &resp),
                ("Application-UUID", &uuid),
            ],
        );
    }

    /// Hangs the channel up: CHANNEL_HANGUP, the running apps' EXECUTE_COMPLETE (top first),
    /// then the closing sequence of the traces.
    fn hangup(&mut self, now: Instant, cause: &str, by: HangupBy) {
        if !self.ch.is_up() {
            return;
        }
        let caller = by == HangupBy::Caller;
        self.tr.hangup = Some(Hangup {
            cause: cause.to_string(),
            by,
            at: self.since(now),
        });
        let sip = self.ch.kind() == ChannelKind::Sip;
        if sip && caller {
            // Trace conn09 (the caller sent BYE).
            self.ch.set_var("sip_term_status", "200");
            self.ch.set_var("proto_specific_hangup_cause", "sip:200");
            self.ch.set_var("sip_term_cause", "16");
        }
        self.ch.hang_up(cause);
        self.emit(now, "CHANNEL_HANGUP", channel::AT_HANGUP, WITH_VARS, &[]);
        if sip && caller {
            self.ch.set_var("sip_hangup_disposition", "recv_bye");
        }
        self.next_start = None;
        while let Some(top) = self.stack.last_mut() {
            let resp = match &mut top.kind {
                Kind::Playback => Some("PLAYBACK ERROR"),
                Kind::Read(_) => {
                    self.ch.set_var("read_result", "failure");
                    None
                }
                _ => None,
            };
            let talking = matches!(&top.kind, Kind::Bridge(st) if st.talking);
            if matches!(top.kind, Kind::Playback) {
                self.set_playback_vars(now);
            }
            if talking {
                let c = if caller { "NORMAL_CLEARING" } else { cause };
                self.end_bridge(now, c);
            }
            if let Some(run) = self.complete_top_inner(now, resp) {
                self.completed_at[run.ex.cmd] = Some(now);
            }
        }
        while let Some(q) = self.queue.pop_front() {
            self.tr.skipped.push((q.cmd(), "channel hung up".into()));
        }
        self.finish_socket_app(now);
        self.ch.enter_cs_hangup();
        self.emit(now, "CHANNEL_STATE", channel::AT_STATE, NO_VARS, &[]);
        self.ch.enter_cs_reporting();
        self.emit(now, "CHANNEL_STATE", channel::AT_STATE, NO_VARS, &[]);
        let last = self.last_app.clone();
        self.ch.add_cdr_vars(
            last.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            !caller,
        );
        self.emit(
            now,
            "CHANNEL_HANGUP_COMPLETE",
            channel::AT_REPORTING,
            EventShape {
                vars: true,
                leading_hangup_cause: true,
            },
            &[],
        );
        self.tr.hangup_complete_at = Some(self.since(now));
        match self.linger {
            Some(secs) => {
                let start = self.out.len();
                let uuid = self.ch.uuid().to_string();
                let name = self.ch.channel_name().to_string();
                wire::linger_notice(&mut self.out, &uuid, &name, secs);
                let mut f = Self::frame("text/disconnect-notice");
                f.text = Some("linger".into());
                self.record(now, start, f);
                if secs >= 0 {
                    // Trace conn05: `linger 3` closed ~3.5 s after the notice.
                    self.linger_close_at = Some(after(
                        now,
                        Duration::from_secs(secs.max(0) as u64)
                            .saturating_add(Duration::from_millis(500)),
                    ));
                }
            }
            None => self.disconnect_and_close(now),
        }
    }

    fn disconnect_and_close(&mut self, now: Instant) {
        let start = self.out.len();
        let uuid = self.ch.uuid().to_string();
        wire::disconnect_notice(&mut self.out, &uuid);
        let mut f = Self::frame("text/disconnect-notice");
        f.text = Some("disconnect".into());
        self.record(now, start, f);
        self.close_with(CallEnd::SwitchClosed);
    }

    /// The controller closed the socket (or it failed).
    pub fn on_eof(&mut self, now: Instant) {
        if self.close.is_some() {
            return;
        }
        if self.tr.hangup_complete_at.is_some() {
            self.tr.controller_closed_after_hangup_complete = true;
        } else if self.ch.is_up() && !self.transferred {
            // FreeSWITCH lets the running app finish, then the dialplan continues after
            // `socket` (A8, trace conn06); whether it resumes is in `resume_requested`.
            self.tr.controller_left_mid_call = true;
        }
        let _ = now;
        self.close_with(CallEnd::ControllerClosed);
    }

    /// Records an unparseable input and closes.
    pub fn on_protocol_error(&mut self, err: String) {
        self.tr.errors.push(err.clone());
        self.close_with(CallEnd::ProtocolError(err));
    }

    /// Appends up to `batch` flood events (fault), returning how many remain.
    pub fn flood(&mut self, now: Instant, batch: usize) -> usize {
        let n = batch.min(self.flood_remaining);
        for _ in 0..n {
            let body = self.ch.render_event_body(
                self.fmt,
                "CHANNEL_STATE",
                channel::AT_STATE,
                NO_VARS,
                &[],
            );
            wire::event_frame(&mut self.out, self.fmt == Format::Json, &body);
        }
        if n > 0 {
            let mut f = Self::frame("text/event-plain");
            f.text = Some(format!("flood of {n} CHANNEL_STATE events"));
            f.at = self.since(now);
            self.tr.frames.push(f);
        }
        self.flood_remaining -= n;
        self.flood_remaining
    }

    /// The finished transcript.
    pub fn into_transcript(mut self, now: Instant) -> Transcript {
        self.tr.ended_at = self.since(now);
        self.tr.end = self.close.take();
        self.tr
    }
}

/// `now + d`, saturating: durations come from the controller (`sleep 18446744073709551615`,
/// `linger 99999999999`) and must not overflow the clock. Anything beyond a year is a year.
fn after(now: Instant, d: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    now.checked_add(d.min(YEAR)).unwrap_or(now)
}

/// ASCII case-insensitive prefix test that cannot panic on a multi-byte character.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// C's `atoi`: leading whitespace, optional sign, digits; anything else stops (0 if none).
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut n: i64 = 0;
    for c in digits.chars() {
        match c.to_digit(10) {
            Some(d) => n = n.saturating_mul(10).saturating_add(d as i64),
            None => break,
        }
    }
    if neg { -n } else { n }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Runs one whole fake call over `stream` (already connected to the controller) until either
/// side closes it, and returns the transcript. Never panics on controller input.
pub async fn run_call<S>(stream: S, script: CallScript) -> Transcript
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write_delay = script.faults.iter().find_map(|f| match f {
        Fault::WriteDelay(d) => Some(*d),
        _ => None,
    });
    let chunked = script.faults.iter().find_map(|f| match f {
        Fault::ChunkedWrites { chunk, delay } => Some(((*chunk).max(1), *delay)),
        _ => None,
    });
    let mut sess = Session::new(script, Instant::now());
    let mut inbuf = BytesMut::with_capacity(8 * 1024);
    let mut eof = false;
    loop {
        let now = Instant::now();
        while sess.closing().is_none() {
            match command::parse_next(&mut inbuf) {
                Ok(Some(cmd)) => sess.on_command(cmd, now),
                Ok(None) => break,
                Err(e) => sess.on_protocol_error(e.to_string()),
            }
        }
        sess.run_due(now);
        if eof {
            sess.on_eof(now);
        }
        loop {
            if !sess.out.is_empty() {
                let res = write_out(&mut wr, &sess.out, write_delay, chunked).await;
                sess.out.clear();
                if let Err(e) = res {
                    // The controller went away while we wrote: like FreeSWITCH, just stop.
                    if sess.closing().is_none() {
                        sess.on_eof(Instant::now());
                    }
                    sess.tr.errors.push(format!("write failed: {e}"));
                    return sess.into_transcript(Instant::now());
                }
            }
            if sess.flood_remaining == 0 {
                break;
            }
            sess.flood(Instant::now(), 500);
        }
        if sess.closing().is_some() {
            let _ = wr.shutdown().await;
            return sess.into_transcript(Instant::now());
        }
        let deadline = sess
            .next_deadline()
            .unwrap_or_else(|| after(Instant::now(), Duration::from_secs(3600)));
        tokio::select! {
            r = rd.read_buf(&mut inbuf) => match r {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) => {
                    sess.tr.errors.push(format!("read failed: {e}"));
                    eof = true;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

async fn write_out<W: AsyncWrite + Unpin>(
    wr: &mut W,
    data: &[u8],
    delay: Option<Duration>,
    chunked: Option<(usize, Duration)>,
) -> std::io::Result<()> {
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match chunked {
        Some((size, pause)) => {
            for chunk in data.chunks(size) {
                wr.write_all(chunk).await?;
                wr.flush().await?;
                tokio::time::sleep(pause).await;
            }
            Ok(())
        }
        None => {
            wr.write_all(data).await?;
            wr.flush().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("10"), 10);
        assert_eq!(atoi(" -1"), -1);
        assert_eq!(atoi("3 seconds"), 3);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("99999999999999999999999"), i64::MAX);
    }

    /// Random command soup and random time jumps: never a panic, the transcript stays sane.
    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let verbs = [
            "connect",
            "myevents",
            "myevents json",
            "linger",
            "linger 2",
            "nolinger",
            "resume",
            "getvar",
            "getvar uuid",
            "event plain ALL",
            "event",
            "nixevent ALL",
            "noevents",
            "filter Event-Name DTMF",
            "filter delete all",
            "divert_events on",
            "log info",
            "nolog",
            "api",
            "bgapi uptime",
            "sendevent CUSTOM",
            "noop",
            "\u{fffd}\u{fffd}",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
            "sendmsg",
        ];
        let apis = [
            "uuid_break ME all",
            "uuid_break ME",
            "uuid_kill ME USER_BUSY",
            "uuid_getvar ME x",
            "uuid_setvar ME a b",
            "uuid_transfer ME -bleg",
            "uuid_transfer ME 100 XML x",
            "uuid_answer ME",
            "sched_hangup +0 ME",
            "uptime",
            "status",
            "bogus",
            "",
        ];
        let args = [
            "",
            "x",
            "foo=bar",
            "^^:a=1:b=2",
            "1 4 f v 100 # 50",
            "1 4",
            "4 4 3 100 # p i v \\d+ 50",
            "4 4 3 100 # p i v ( 50",
            "user/busy",
            "200",
            "486 Busy",
            "180",
            "183",
            "2000 XML d",
            "-5",
            "99999999999999999999",
            "${foo}${",
            "USER_BUSY",
            "bogus_cause",
            "+1 ME",
        ];
        let apps = super::super::apps::DEFAULT_KNOWN_APPS;
        let (mut started, mut completed, mut hangups, mut dtmf) = (0, 0, 0, 0);
        for seed in 0..400u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let script = CallScript::new("1000")
                .media_time(Duration::from_millis(rng.gen_range(0..50)))
                .dtmf("1@5ms,#@20ms,2@read+1ms")
                .unwrap_or_else(|_| CallScript::new("1000"))
                .hangup_after(Duration::from_millis(rng.gen_range(0..4000)))
                .bridge("busy", BridgeOutcome::failed("USER_BUSY"))
                .fault(Fault::FloodEvents {
                    after_command: 3,
                    count: 2,
                });
            let mut now = Instant::now();
            let mut s = Session::new(script, now);
            let me = s.channel().uuid().to_string();
            s.on_command(
                RawCommand {
                    line: "connect".into(),
                    headers: Vec::new(),
                    body: None,
                },
                now,
            );
            for _ in 0..rng.gen_range(1..40) {
                let verb = verbs[rng.gen_range(0..verbs.len())];
                let mut headers = Vec::new();
                let mut line = verb.to_string();
                if verb == "api" {
                    line = format!(
                        "api {}",
                        apis[rng.gen_range(0..apis.len())].replace("ME", &me)
                    );
                } else if verb == "sendmsg" {
                    let cc = [
                        "execute", "execute", "execute", "execute", "execute", "execute", "hangup",
                        "xferext", "",
                    ][rng.gen_range(0..9)];
                    headers.push(("call-command".to_string(), cc.to_string()));
                    let app = if rng.gen_bool(0.1) {
                        "no_such_app"
                    } else {
                        apps[rng.gen_range(0..apps.len())]
                    };
                    headers.push(("execute-app-name".into(), app.into()));
                    headers.push((
                        "execute-app-arg".into(),
                        args[rng.gen_range(0..args.len())].replace("ME", &me),
                    ));
                    if rng.gen_bool(0.7) {
                        headers.push(("event-lock".into(), "true".into()));
                    }
                    if rng.gen_bool(0.1) {
                        headers.push(("loops".into(), "-1".into()));
                    }
                    headers.push(("hangup-cause".into(), "CALL_REJECTED".into()));
                }
                s.on_command(
                    RawCommand {
                        line,
                        headers,
                        body: None,
                    },
                    now,
                );
                now += Duration::from_millis(rng.gen_range(0..120));
                s.run_due(now);
                while s.flood_remaining > 0 {
                    s.flood(now, 10);
                }
                s.out.clear();
                if s.closing().is_some() {
                    break;
                }
                if rng.gen_bool(0.01) {
                    s.on_command(
                        RawCommand {
                            line: "exit".into(),
                            headers: Vec::new(),
                            body: None,
                        },
                        now,
                    );
                }
            }
            s.on_eof(now);
            let tr = s.into_transcript(now);
            assert!(tr.end.is_some(), "seed {seed}");
            for a in &tr.apps {
                assert!(a.completed.is_none_or(|c| c >= a.started), "seed {seed}");
            }
            started += tr.apps.len();
            completed += tr.apps.iter().filter(|a| a.completed.is_some()).count();
            hangups += usize::from(tr.hangup.is_some());
            dtmf += tr.dtmf.len();
        }
        assert!(
            started > 400 && completed > 300,
            "{started} started, {completed} done"
        );
        assert!(
            hangups > 100 && dtmf > 50,
            "{hangups} hangups, {dtmf} digits"
        );
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("abc", 10), "abc");
    }
}

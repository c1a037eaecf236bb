//! The call handle modules drive: one outbound ESL connection, one call.
//!
//! Modules never see ESL frames. [`Call::execute`] sends `sendmsg` with `call-command: execute`,
//! a fresh `event-uuid` and `event-lock: true` (so queued apps cannot nest inside a running
//! playback), then waits for the CHANNEL_EXECUTE_COMPLETE whose `Application-UUID` is ours,
//! racing CHANNEL_HANGUP, socket loss, the command timeout and the call deadline. Results come
//! from that event's `Application-Response` and `variable_*` snapshot, so no `getvar` round trip
//! is needed (FreeSWITCH attaches the channel variables to EXECUTE_COMPLETE).
//!
//! Every wait drains the event stream, so the reader never stalls (FreeSWITCH kills a listener
//! after 500 lost events) and DTMF pressed at any time lands in the call's digit buffer, which is
//! how type-ahead during a prompt survives the gap between two apps.

use crate::callflow::model::Node;
use crate::engine::EngineContext;
use crate::engine::metaflow::{Detector, DigitFate, MetaflowConfig};
use crate::engine::snapshot::ChannelSnapshot;
use freeswitch_esl_tokio::{
    EslClient, EslError, EslEvent, EslEventStream, EslEventType, EslResponse,
};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the flow cannot go on; every wait returns it instead of hanging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnded {
    /// CHANNEL_HANGUP arrived (the caller or the far end hung up, or we did).
    HungUp(String),
    /// The ESL socket closed or failed.
    Disconnected(String),
    /// A command got no reply or no completion within its timeout.
    Timeout(String),
    /// The per-call deadline passed (watchdog).
    Deadline,
    /// The switch answered a command with `-ERR` (the command will never complete).
    Refused(String),
    /// A metaflow transferred the call out of our control.
    Transferred,
    /// The service is shutting down and the grace period ran out: the call goes back to the
    /// dialplan (`resume` was sent at set-up; closing the socket hands it over).
    HandedBack,
    /// A metaflow `callflow` asked to run another flow: the current module's wait is cut short
    /// so the executor branches at once (see [`Call::request_branch`]).
    Interrupted,
}

impl fmt::Display for CallEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallEnded::HungUp(cause) => write!(f, "call hung up ({cause})"),
            CallEnded::Disconnected(why) => write!(f, "socket lost: {why}"),
            CallEnded::Timeout(what) => write!(f, "timed out waiting for {what}"),
            CallEnded::Deadline => write!(f, "call deadline reached"),
            CallEnded::Refused(reply) => write!(f, "switch refused the command: {reply}"),
            CallEnded::Transferred => write!(f, "call transferred away"),
            CallEnded::HandedBack => write!(f, "handed back to the dialplan (shutdown)"),
            CallEnded::Interrupted => write!(f, "interrupted by a metaflow callflow"),
        }
    }
}

impl std::error::Error for CallEnded {}

/// The outcome of one executed app.
#[derive(Debug, Clone)]
pub struct Completion {
    /// `Application-Response` (`FILE PLAYED`, `_none_`, a bridge cause, ...).
    pub response: String,
    /// The CHANNEL_EXECUTE_COMPLETE event's headers, with the channel variables at completion
    /// time (compact: the call keeps the latest one for its whole life).
    pub event: Arc<ChannelSnapshot>,
}

impl Completion {
    /// A channel variable as it was when the app completed.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.event.variable_str(name)
    }
}

/// One DTMF press as reported by a DTMF event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    /// `0-9`, `*`, `#`, `A-D`.
    pub digit: char,
    /// When the event arrived.
    pub at: Instant,
}

/// Kazoo's digit collection parameters (`collect_digits`).
#[derive(Debug, Clone)]
pub struct Collect {
    /// Stop after this many digits.
    pub max_digits: usize,
    /// How long to wait for the first digit.
    pub timeout: Duration,
    /// How long to wait between digits.
    pub interdigit: Duration,
    /// Digits that end collection (not included in the result).
    pub terminators: String,
}

impl Default for Collect {
    fn default() -> Self {
        Collect {
            max_digits: 1,
            timeout: Duration::from_millis(5000),
            interdigit: Duration::from_millis(2000),
            terminators: "#".into(),
        }
    }
}

/// One line of a call's timeline (printed by `simulate`, logged at debug).
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineEntry {
    /// The executor entered a module.
    Module { module: String, data: Value },
    /// An ESL command was sent.
    Command { text: String },
    /// An app completed.
    Result { app: String, response: String },
    /// The executor chose a child (or stopped).
    Branch { key: String },
    /// DTMF received.
    Dtmf { digit: char },
    /// Anything else worth showing (hangup, metaflow activity).
    Note { text: String },
}

/// Timeline entries with their offset from the start of the call.
pub type Timeline = Vec<(Duration, TimelineEntry)>;

/// A live call. Owned by its session task; modules borrow it mutably.
pub struct Call {
    client: EslClient,
    events: EslEventStream,
    /// The channel UUID (`Unique-ID`).
    pub uuid: String,
    /// The `connect` reply, until the first EXECUTE_COMPLETE: that event carries the same
    /// caller-profile headers and every channel variable, newer, so the ~20 KB connect data is
    /// dropped then (it matters with 20,000 calls parked at once).
    channel: Option<EslResponse>,
    last_snapshot: Option<Arc<ChannelSnapshot>>,
    hangup_cause: Option<String>,
    hangup_complete: bool,
    disconnected: bool,
    answered: bool,
    dtmf: VecDeque<DtmfPress>,
    /// Kazoo's per-call key/value store: `capture_group`, DTMF collections, caller-ID rewrites.
    pub kvs: HashMap<String, Value>,
    /// The account the call belongs to.
    pub account_id: String,
    /// The callflow being run (changes on branch).
    pub callflow_id: String,
    /// Shared engine services (store, config, HTTP client).
    pub ctx: Arc<EngineContext>,
    started: Instant,
    deadline: Instant,
    timeline: Option<Timeline>,
    next_event_uuid: u64,
    metaflows: Option<Arc<MetaflowConfig>>,
    detector: Option<Detector>,
    peer_codes: VecDeque<String>,
    in_metaflow: bool,
    peer_uuid: Option<String>,
    pending_branch: Option<Node>,
    transferred: bool,
    unhold_key: Option<char>,
    unhold_pressed: bool,
    handback: tokio::sync::watch::Receiver<bool>,
}

impl Call {
    /// Wraps an established session (after `connect`, `myevents`, `linger`, `resume`).
    pub fn new(
        client: EslClient,
        events: EslEventStream,
        channel: EslResponse,
        ctx: Arc<EngineContext>,
    ) -> Self {
        let uuid = channel
            .header("Unique-ID")
            .or_else(|| channel.header("Channel-Call-UUID"))
            .unwrap_or_default()
            .to_string();
        let answered = channel.header("Answer-State") == Some("answered");
        let started = Instant::now();
        let deadline = started + ctx.config.call_deadline;
        let handback = ctx.handback.subscribe();
        Call {
            client,
            events,
            uuid,
            channel: Some(channel),
            last_snapshot: None,
            hangup_cause: None,
            hangup_complete: false,
            disconnected: false,
            answered,
            dtmf: VecDeque::new(),
            kvs: HashMap::new(),
            account_id: String::new(),
            callflow_id: String::new(),
            ctx,
            started,
            deadline,
            timeline: None,
            next_event_uuid: rand::random::<u32>() as u64,
            metaflows: None,
            detector: None,
            peer_codes: VecDeque::new(),
            in_metaflow: false,
            peer_uuid: None,
            pending_branch: None,
            transferred: false,
            unhold_key: None,
            unhold_pressed: false,
            handback,
        }
    }

    /// Starts recording a timeline (simulate).
    pub fn record_timeline(&mut self) {
        self.timeline = Some(Vec::new());
    }

    /// Takes the recorded timeline.
    pub fn take_timeline(&mut self) -> Timeline {
        self.timeline.take().unwrap_or_default()
    }

    /// Appends to the timeline, if one is being recorded.
    pub fn note(&mut self, entry: TimelineEntry) {
        if let Some(timeline) = &mut self.timeline {
            timeline.push((self.started.elapsed(), entry));
        }
    }

    /// The ESL client, for the session's setup and teardown.
    pub fn client(&self) -> &EslClient {
        &self.client
    }

    /// A channel header (`Caller-Destination-Number`, `Caller-Caller-ID-Number`,
    /// `Call-Direction`...): from the `connect` reply, later from the latest EXECUTE_COMPLETE,
    /// which repeats the caller profile.
    pub fn channel_header(&self, name: &str) -> Option<&str> {
        match &self.channel {
            Some(channel) => channel.header(name),
            None => self.last_snapshot.as_ref().and_then(|e| e.header_str(name)),
        }
    }

    /// A channel variable: the latest EXECUTE_COMPLETE snapshot first, else the connect data.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.last_snapshot
            .as_ref()
            .and_then(|e| e.variable_str(name))
            .or_else(|| {
                self.channel
                    .as_ref()
                    .and_then(|c| c.header(format!("variable_{name}")))
            })
    }

    /// The caller-ID number as FreeSWITCH currently knows it.
    pub fn caller_id_number(&self) -> Option<&str> {
        self.var("effective_caller_id_number")
            .or_else(|| self.channel_header("Caller-Caller-ID-Number"))
    }

    /// The caller-ID name as FreeSWITCH currently knows it.
    pub fn caller_id_name(&self) -> Option<&str> {
        self.var("effective_caller_id_name")
            .or_else(|| self.channel_header("Caller-Caller-ID-Name"))
    }

    /// The dialled number (`Caller-Destination-Number`).
    pub fn destination_number(&self) -> Option<&str> {
        self.channel_header("Caller-Destination-Number")
    }

    /// Turns metaflow detection on for this call.
    pub fn enable_metaflows(&mut self, config: MetaflowConfig) {
        self.detector = config
            .listen_on
            .hears_self()
            .then(|| Detector::new(config.binding_digit, config.digit_timeout));
        self.metaflows = Some(Arc::new(config));
    }

    /// The call's merged metaflow settings, if any.
    pub fn metaflows(&self) -> Option<&Arc<MetaflowConfig>> {
        self.metaflows.as_ref()
    }

    /// The far end's channel UUID while bridged.
    pub fn peer_uuid(&self) -> Option<&str> {
        self.peer_uuid.as_deref()
    }

    /// A metaflow asks the executor to branch to `flow`: once the metaflow is over, every wait
    /// of the current module returns [`CallEnded::Interrupted`] (a menu or a digit collection
    /// must not run on), and the executor branches instead of following the module's result.
    pub fn request_branch(&mut self, flow: Node) {
        self.pending_branch = Some(flow);
    }

    /// Takes a branch requested by a metaflow.
    pub fn take_requested_branch(&mut self) -> Option<Node> {
        self.pending_branch.take()
    }

    /// Whether waits must give way to a branch a metaflow requested (never inside the metaflow
    /// run itself, nor once the call is over).
    fn interrupted(&self) -> bool {
        self.pending_branch.is_some() && !self.in_metaflow && !self.is_over()
    }

    /// When the pending caller code completes, if it can run then: not while a metaflow runs
    /// (the code waits for it), so a wait never wakes up for a code it cannot run.
    fn code_due(&self) -> Option<Instant> {
        if self.in_metaflow {
            return None;
        }
        self.detector.as_ref().and_then(Detector::deadline)
    }

    /// Turns metaflows off for good (the flow is over): pending codes and a requested branch
    /// are dropped, later digits are nobody's.
    fn end_metaflows(&mut self) {
        self.metaflows = None;
        self.detector = None;
        self.peer_codes.clear();
        self.pending_branch = None;
        self.unhold_key = None;
        self.unhold_pressed = false;
    }

    /// Arms (or clears) the single digit that takes a held peer off hold.
    pub fn set_unhold_key(&mut self, key: Option<char>) {
        self.unhold_key = key;
        self.unhold_pressed = false;
    }

    /// A metaflow moved the call out of our control (blind transfer of this leg).
    pub fn mark_transferred(&mut self) {
        self.transferred = true;
    }

    /// Gives digits back to the main flow's buffer (an unmatched metaflow code).
    pub fn push_back_digits(&mut self, digits: &str) {
        let now = Instant::now();
        for digit in digits.chars() {
            self.dtmf.push_back(DtmfPress { digit, at: now });
        }
    }

    /// True once the channel is answered (connect data, CHANNEL_ANSWER, or our `answer`).
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// The hangup cause once CHANNEL_HANGUP was seen.
    pub fn hangup_cause(&self) -> Option<&str> {
        self.hangup_cause.as_deref()
    }

    /// True once the channel hung up or the socket is gone.
    pub fn is_over(&self) -> bool {
        self.hangup_cause.is_some() || self.disconnected
    }

    /// True once CHANNEL_HANGUP_COMPLETE arrived.
    pub fn hangup_completed(&self) -> bool {
        self.hangup_complete
    }

    /// Time left before the per-call deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Digits received and not yet consumed.
    pub fn pending_dtmf(&self) -> impl Iterator<Item = char> + '_ {
        self.dtmf.iter().map(|p| p.digit)
    }

    /// Drops buffered digits (Kazoo's `flush_dtmf`).
    pub fn flush_dtmf(&mut self) {
        self.dtmf.clear();
    }

    /// Why the call cannot go on (hung up, socket gone, transferred, deadline passed), if it
    /// cannot.
    pub fn ended(&self) -> Option<CallEnded> {
        if self.transferred {
            return Some(CallEnded::Transferred);
        }
        if *self.handback.borrow() {
            return Some(CallEnded::HandedBack);
        }
        if let Some(cause) = &self.hangup_cause {
            return Some(CallEnded::HungUp(cause.clone()));
        }
        if self.disconnected {
            return Some(CallEnded::Disconnected("socket closed".into()));
        }
        if Instant::now() >= self.deadline {
            return Some(CallEnded::Deadline);
        }
        None
    }

    fn fresh_event_uuid(&mut self) -> String {
        self.next_event_uuid = self.next_event_uuid.wrapping_add(1);
        format!("{}-{:08x}", self.uuid, self.next_event_uuid)
    }

    /// Runs an app with the default command timeout (short apps: answer, set, hangup...).
    pub async fn execute(&mut self, app: &str, arg: &str) -> Result<Completion, CallEnded> {
        let timeout = self.ctx.config.command_timeout;
        self.execute_for(app, arg, timeout).await
    }

    /// Runs an app that may take as long as the call (playback, bridge, conference): it is bounded
    /// by the per-call deadline only.
    pub async fn execute_long(&mut self, app: &str, arg: &str) -> Result<Completion, CallEnded> {
        let timeout = self.remaining();
        self.execute_for(app, arg, timeout).await
    }

    /// Runs an app and waits at most `timeout` for its EXECUTE_COMPLETE.
    pub async fn execute_for(
        &mut self,
        app: &str,
        arg: &str,
        timeout: Duration,
    ) -> Result<Completion, CallEnded> {
        if let Some(ended) = self.ended() {
            return Err(ended);
        }
        let event_uuid = self.fresh_event_uuid();
        let mut msg = EslEvent::new();
        msg.set_header("call-command", "execute");
        msg.set_header("execute-app-name", app);
        if arg.contains('\n') || arg.contains('\r') || arg.len() > 2048 {
            // Header values cannot carry line breaks; FreeSWITCH reads the arg from a text/plain
            // body when execute-app-arg is absent.
            msg.set_header("content-type", "text/plain");
            msg.set_body(arg);
        } else if !arg.is_empty() {
            msg.set_header("execute-app-arg", arg);
        }
        msg.set_header("event-uuid", event_uuid.as_str());
        msg.set_header("event-lock", "true");
        self.note(TimelineEntry::Command {
            text: if arg.is_empty() {
                format!("execute {app}")
            } else {
                format!("execute {app} {arg}")
            },
        });
        tracing::debug!(app, arg, event_uuid, "execute");
        let _accepted = self.send(msg).await?;
        let deadline = Instant::now() + timeout.min(self.remaining());
        let what = format!("{app} completion");
        let completion = self
            .wait_for(deadline, &what, |event| {
                event.event_type() == Some(EslEventType::ChannelExecuteComplete)
                    && event.header_str("Application-UUID") == Some(event_uuid.as_str())
            })
            .await?;
        let response = completion
            .header_str("Application-Response")
            .unwrap_or("_none_")
            .to_string();
        self.note(TimelineEntry::Result {
            app: app.to_string(),
            response: response.clone(),
        });
        // Kept compact (the parsed event is ~30 KB of small allocations) and shared, not cloned.
        let completion = Arc::new(ChannelSnapshot::from_event(&completion));
        self.last_snapshot = Some(completion.clone());
        self.channel = None;
        Ok(Completion {
            response,
            event: completion,
        })
    }

    async fn send(&mut self, msg: EslEvent) -> Result<EslResponse, CallEnded> {
        match self.client.sendmsg(None, msg).await {
            Ok(reply) if reply.is_success() => Ok(reply),
            Ok(reply) => Err(CallEnded::Refused(
                reply.reply_text().unwrap_or("-ERR").to_string(),
            )),
            Err(EslError::Timeout { .. }) => Err(CallEnded::Timeout("command reply".into())),
            Err(error) => {
                self.disconnected = true;
                Err(CallEnded::Disconnected(error.to_string()))
            }
        }
    }

    /// Sets a channel variable (`set name=value`).
    pub async fn set_var(&mut self, name: &str, value: &str) -> Result<Completion, CallEnded> {
        self.execute("set", &format!("{name}={value}")).await
    }

    /// Sets a channel variable and exports it to the B-leg (`export name=value`).
    pub async fn export_var(&mut self, name: &str, value: &str) -> Result<Completion, CallEnded> {
        self.execute("export", &format!("{name}={value}")).await
    }

    /// Hangs up with a cause (`call-command: hangup`; FreeSWITCH sends no EXECUTE events for it).
    pub async fn hangup(&mut self, cause: &str) -> Result<(), CallEnded> {
        if self.is_over() {
            return Ok(());
        }
        let mut msg = EslEvent::new();
        msg.set_header("call-command", "hangup");
        msg.set_header("hangup-cause", cause);
        self.note(TimelineEntry::Command {
            text: format!("hangup {cause}"),
        });
        self.send(msg).await.map(|_| ())
    }

    /// Hangs up at once even while an app runs (`api uuid_kill <uuid> <cause>`): a queued
    /// `call-command: hangup` would wait behind an app started with `event-lock`. Used by the
    /// watchdog.
    pub async fn kill(&mut self, cause: &str) -> Result<(), CallEnded> {
        if self.is_over() {
            return Ok(());
        }
        let uuid = self.uuid.clone();
        self.api(&format!("uuid_kill {uuid} {cause}"))
            .await
            .map(|_| ())
    }

    /// Runs an API command on the switch (`uuid_break`, `uuid_transfer`, ...); needs `full`.
    pub async fn api(&mut self, command: &str) -> Result<String, CallEnded> {
        self.note(TimelineEntry::Command {
            text: format!("api {command}"),
        });
        match self.client.api(command).await {
            Ok(reply) => Ok(reply.body().unwrap_or_default().to_string()),
            Err(EslError::Timeout { .. }) => Err(CallEnded::Timeout("api reply".into())),
            Err(error) => {
                self.disconnected = true;
                Err(CallEnded::Disconnected(error.to_string()))
            }
        }
    }

    /// Waits `duration` while keeping the event stream drained; ends early on hangup.
    pub async fn sleep(&mut self, duration: Duration) -> Result<(), CallEnded> {
        let deadline = Instant::now() + duration.min(self.remaining());
        match self.wait_for(deadline, "sleep", |_| false).await {
            Err(CallEnded::Timeout(_)) if Instant::now() < self.deadline => Ok(()),
            Err(other) => Err(other),
            Ok(_) => Ok(()),
        }
    }

    /// Collects digits the way Kazoo does from DTMF events: buffered type-ahead first, then
    /// waits `timeout` for the first digit and `interdigit` between digits; a terminator or
    /// `max_digits` ends collection; a timeout returns what was collected so far.
    pub async fn collect_digits(&mut self, collect: &Collect) -> Result<String, CallEnded> {
        let mut digits = String::new();
        let mut deadline = Instant::now() + collect.timeout;
        loop {
            while let Some(press) = self.dtmf.pop_front() {
                if collect.terminators.contains(press.digit) {
                    return Ok(digits);
                }
                digits.push(press.digit);
                if digits.len() >= collect.max_digits {
                    return Ok(digits);
                }
                deadline = Instant::now() + collect.interdigit;
            }
            if let Some(ended) = self.ended() {
                return Err(ended);
            }
            if Instant::now() >= deadline {
                return Ok(digits);
            }
            match self.wait_inner(deadline, "digits", true, |_| false).await {
                Ok(_) => continue,
                Err(CallEnded::Timeout(_)) => return Ok(digits),
                Err(other) => return Err(other),
            }
        }
    }

    /// Waits until CHANNEL_HANGUP_COMPLETE or socket loss (at most `timeout`).
    pub async fn wait_hangup_complete(&mut self, timeout: Duration) {
        // The flow is over: a code completing now must not act on the dying call.
        self.end_metaflows();
        let deadline = Instant::now() + timeout;
        while !self.hangup_complete && !self.disconnected {
            let result = self
                .wait_for(deadline, "hangup complete", |e| {
                    e.event_type() == Some(EslEventType::ChannelHangupComplete)
                })
                .await;
            if matches!(
                result,
                Err(CallEnded::Timeout(_)) | Err(CallEnded::Deadline)
            ) {
                break;
            }
            if result.is_ok() {
                break;
            }
        }
    }

    /// Drains events until one satisfies `done`, updating call state for every event on the way.
    /// Hangup and socket loss end the wait with an error, unless `done` accepted that very event.
    async fn wait_for(
        &mut self,
        deadline: Instant,
        what: &str,
        done: impl FnMut(&EslEvent) -> bool,
    ) -> Result<EslEvent, CallEnded> {
        // Without `until_digits` the loop only ends with an event or an error.
        self.wait_inner(deadline, what, false, done)
            .await?
            .ok_or_else(|| CallEnded::Timeout(what.to_string()))
    }

    /// The one event loop: drains events until `done` accepts one (`Some`), or — with
    /// `until_digits` — until the digit buffer is not empty (`None`; digits may also come back
    /// from an unmatched metaflow code, without any event).
    async fn wait_inner(
        &mut self,
        deadline: Instant,
        what: &str,
        until_digits: bool,
        mut done: impl FnMut(&EslEvent) -> bool,
    ) -> Result<Option<EslEvent>, CallEnded> {
        loop {
            self.run_due_metaflows().await;
            if self.transferred {
                return Err(CallEnded::Transferred);
            }
            if self.interrupted() {
                return Err(CallEnded::Interrupted);
            }
            if until_digits && !self.dtmf.is_empty() {
                return Ok(None);
            }
            if self.disconnected {
                return Err(CallEnded::Disconnected("socket closed".into()));
            }
            let wake = match self.code_due() {
                Some(code_due) if code_due < deadline => code_due,
                _ => deadline,
            };
            let next = tokio::select! {
                next = tokio::time::timeout_at(wake.into(), self.events.recv()) => next,
                _ = self.handback.wait_for(|back| *back) => return Err(CallEnded::HandedBack),
            };
            let Ok(next) = next else {
                if wake < deadline {
                    continue;
                }
                if Instant::now() >= self.deadline {
                    return Err(CallEnded::Deadline);
                }
                return Err(CallEnded::Timeout(what.to_string()));
            };
            let Some(event) = self.take_incoming(next)? else {
                continue;
            };
            let accepted = done(&event);
            self.observe(&event);
            if accepted {
                return Ok(Some(event));
            }
            if let Some(cause) = &self.hangup_cause {
                return Err(CallEnded::HungUp(cause.clone()));
            }
        }
    }

    /// Runs the metaflow codes that are complete (caller digits after `digit_timeout`, codes
    /// reported from the peer leg). Never re-entered from inside a metaflow.
    async fn run_due_metaflows(&mut self) {
        if self.in_metaflow || self.metaflows.is_none() {
            return;
        }
        if self.is_over() || self.transferred {
            // A code cut short by the end of the call never runs; dropping it also stops the
            // waits from waking up for it.
            if let Some(detector) = self.detector.as_mut() {
                detector.cancel();
            }
            self.peer_codes.clear();
            self.unhold_pressed = false;
            return;
        }
        if self.unhold_pressed {
            self.in_metaflow = true;
            if let Err(ended) = crate::modules::metaflow::hold::unhold(self).await {
                tracing::info!(%ended, "unhold failed");
            }
            self.in_metaflow = false;
        }
        loop {
            let now = Instant::now();
            let (code, leg) = if let Some(code) = self.detector.as_mut().and_then(|d| d.poll(now)) {
                (code, "self")
            } else if let Some(code) = self.peer_codes.pop_front() {
                (code, "peer")
            } else {
                return;
            };
            let Some(config) = self.metaflows.clone() else {
                return;
            };
            let node = config.lookup(&code, leg);
            self.note(TimelineEntry::Note {
                text: format!(
                    "metaflow code {}{code} on {leg}: {}",
                    config.binding_digit,
                    node.as_ref().map_or("no match", |n| n.module.as_str())
                ),
            });
            match node {
                Some(node) => {
                    self.in_metaflow = true;
                    crate::engine::metaflow_runner::run(self, node).await;
                    self.in_metaflow = false;
                }
                None if leg == "self" => {
                    let mut digits = config.binding_digit.to_string();
                    digits.push_str(&code);
                    self.push_back_digits(&digits);
                }
                None => {}
            }
        }
    }

    /// Awaits `work` (an HTTP request, a timer) while draining events, so the reader never
    /// stalls; a hangup or socket loss abandons `work`, and a metaflow `callflow` interrupts it
    /// ([`CallEnded::Interrupted`]). Metaflow codes completing meanwhile run inside it, so it
    /// must be awaited to the end, never cancelled from outside (bound `work` instead).
    pub async fn race<F: std::future::Future>(&mut self, work: F) -> Result<F::Output, CallEnded> {
        tokio::pin!(work);
        let mut handback = self.handback.clone();
        loop {
            self.run_due_metaflows().await;
            if let Some(ended) = self.ended() {
                return Err(ended);
            }
            if self.interrupted() {
                return Err(CallEnded::Interrupted);
            }
            let deadline = match self.code_due() {
                Some(code_due) if code_due < self.deadline => code_due,
                _ => self.deadline,
            };
            tokio::select! {
                output = &mut work => return Ok(output),
                next = self.events.recv() => {
                    if let Some(event) = self.take_incoming(next)? {
                        self.observe(&event);
                    }
                }
                _ = handback.wait_for(|back| *back) => return Err(CallEnded::HandedBack),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if Instant::now() >= self.deadline {
                        return Err(CallEnded::Deadline);
                    }
                }
            }
        }
    }

    /// Turns one item of the event stream into an event, `None` (skip), or the end of the call.
    fn take_incoming(
        &mut self,
        next: Option<Result<EslEvent, EslError>>,
    ) -> Result<Option<EslEvent>, CallEnded> {
        match next {
            None => {
                self.disconnected = true;
                Err(CallEnded::Disconnected("event stream ended".into()))
            }
            Some(Err(EslError::QueueFull)) => {
                tracing::warn!(uuid = %self.uuid, "event queue overflowed; events were dropped");
                Ok(None)
            }
            Some(Err(error)) => {
                tracing::warn!(uuid = %self.uuid, %error, "event stream error");
                if self.client.is_connected() {
                    Ok(None)
                } else {
                    self.disconnected = true;
                    Err(CallEnded::Disconnected(error.to_string()))
                }
            }
            Some(Ok(event)) => Ok(Some(event)),
        }
    }

    /// Updates call state from any event (hangup, DTMF).
    fn observe(&mut self, event: &EslEvent) {
        match event.event_type() {
            Some(EslEventType::ChannelHangup) => {
                let cause = event
                    .header_str("Hangup-Cause")
                    .unwrap_or("NORMAL_CLEARING")
                    .to_string();
                self.note(TimelineEntry::Note {
                    text: format!("channel hung up: {cause}"),
                });
                self.hangup_cause.get_or_insert(cause);
            }
            Some(EslEventType::ChannelHangupComplete) => {
                self.hangup_complete = true;
                if self.hangup_cause.is_none() {
                    let cause = event
                        .header_str("Hangup-Cause")
                        .unwrap_or("NORMAL_CLEARING")
                        .to_string();
                    self.hangup_cause = Some(cause);
                }
            }
            Some(EslEventType::ChannelAnswer) => self.answered = true,
            Some(EslEventType::ChannelExecuteComplete)
                if event.header_str("Application") == Some("answer") =>
            {
                self.answered = true
            }
            Some(EslEventType::ChannelBridge) => {
                self.peer_uuid = event
                    .header_str("Other-Leg-Unique-ID")
                    .or_else(|| event.header_str("Bridge-B-Unique-ID"))
                    .map(str::to_string);
            }
            Some(EslEventType::ChannelUnbridge) => {
                // No peer is held any more: the unhold key is an ordinary digit again.
                self.peer_uuid = None;
                self.set_unhold_key(None);
            }
            Some(EslEventType::ChannelData) => {
                // bind_digit_action on a bridge leg reports the far end's metaflow code.
                let hears_peer = self
                    .metaflows
                    .as_ref()
                    .is_some_and(|m| m.listen_on.hears_peer());
                if let (true, Some("peer"), Some(digits)) = (
                    hears_peer,
                    event.header_str("metaflow"),
                    event.header_str("digits"),
                ) {
                    let code: String = digits
                        .chars()
                        .skip(1)
                        .take(crate::engine::metaflow::MAX_CODE_LEN)
                        .collect();
                    self.note(TimelineEntry::Note {
                        text: format!("peer digits {digits}"),
                    });
                    self.peer_codes.push_back(code);
                }
            }
            Some(EslEventType::Dtmf) => {
                if let Some(digit) = event
                    .header_str("DTMF-Digit")
                    .and_then(|d| d.chars().next())
                {
                    self.note(TimelineEntry::Dtmf { digit });
                    if !self.in_metaflow {
                        if self.unhold_key == Some(digit)
                            && self
                                .detector
                                .as_ref()
                                .and_then(Detector::deadline)
                                .is_none()
                        {
                            self.unhold_pressed = true;
                            return;
                        }
                        if let Some(detector) = self.detector.as_mut() {
                            if detector.on_digit(digit, Instant::now()) == DigitFate::Taken {
                                return;
                            }
                        }
                    }
                    self.dtmf.push_back(DtmfPress {
                        digit,
                        at: Instant::now(),
                    });
                    // Bound type-ahead: a stuck key must not grow memory without limit.
                    if self.dtmf.len() > 128 {
                        self.dtmf.pop_front();
                    }
                }
            }
            _ => {}
        }
    }
}

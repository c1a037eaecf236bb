//! One outbound ESL connection from FreeSWITCH's `socket` app, from `connect` to close.
//!
//! Set-up: `connect` (keeps the channel data), `myevents` (this channel's events only), a finite
//! `linger` (so CHANNEL_HANGUP_COMPLETE still reaches us after a hangup), `resume` (if we crash
//! or give up, the call goes back to the dialplan's next action: the operator's fallback), and
//! `nixevent` of the myevents types the engine never reads (less for FreeSWITCH to serialise).
//! Then: pick the account, route the dialled number, run the flow, and finish the channel the
//! way the flow ended. The socket is closed after CHANNEL_HANGUP_COMPLETE.

use crate::callflow::model::Node;
use crate::callflow::routing::RouteMatch;
use crate::engine::EngineContext;
use crate::engine::call::{Call, CallEnded, Timeline, TimelineEntry};
use crate::engine::executor::{FlowEnd, run_flow};
use freeswitch_esl_tokio::{EslClient, EslConnectOptions, EventFormat};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpStream;
use tracing::Instrument;

/// Hangup cause for a number nobody routes (Kazoo and FreeSWITCH use the same).
pub const UNALLOCATED: &str = "UNALLOCATED_NUMBER";

/// How a session ended, for tests, `simulate` and metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEnd {
    /// The set-up commands failed (socket closed, no connect reply).
    SetupFailed(String),
    /// No account or no callflow: hung up with UNALLOCATED_NUMBER.
    Rejected(String),
    /// The flow ran and finished this way.
    Flow(FlowEnd),
}

/// Everything a finished session reports.
#[derive(Debug)]
pub struct SessionReport {
    /// How it ended.
    pub end: SessionEnd,
    /// The channel UUID, when known.
    pub uuid: String,
    /// The recorded timeline (only when asked for).
    pub timeline: Timeline,
}

/// Options of one session (simulate records a timeline).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionOptions {
    /// Record a timeline of modules, commands, results and branches.
    pub record_timeline: bool,
}

/// Drives one accepted connection to the end. Never panics on what the peer sends.
pub async fn run_session(
    stream: TcpStream,
    ctx: Arc<EngineContext>,
    options: SessionOptions,
) -> SessionReport {
    ctx.stats.active_calls.fetch_add(1, Ordering::Relaxed);
    ctx.stats.calls_started.fetch_add(1, Ordering::Relaxed);
    metrics::gauge!("callflowd_active_calls").increment(1.0);
    metrics::counter!("callflowd_calls_total").increment(1);
    let report = session(stream, ctx.clone(), options).await;
    ctx.stats.active_calls.fetch_sub(1, Ordering::Relaxed);
    ctx.stats.calls_finished.fetch_add(1, Ordering::Relaxed);
    metrics::gauge!("callflowd_active_calls").decrement(1.0);
    let outcome = match &report.end {
        SessionEnd::SetupFailed(_) => "setup_failed",
        SessionEnd::Rejected(_) => "rejected",
        SessionEnd::Flow(FlowEnd::Hangup(_)) => "completed",
        SessionEnd::Flow(FlowEnd::Released) => "released",
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::HungUp(_))) => "caller_hangup",
        SessionEnd::Flow(FlowEnd::Ended(_)) => "aborted",
    };
    metrics::counter!("callflowd_calls_finished_total", "outcome" => outcome).increment(1);
    report
}

async fn session(
    stream: TcpStream,
    ctx: Arc<EngineContext>,
    options: SessionOptions,
) -> SessionReport {
    let _ = stream.set_nodelay(true);
    let esl_options = EslConnectOptions::new().with_event_queue_size(4096);
    let (client, events) = EslClient::accept_outbound_stream_with_options(stream, esl_options);
    client.set_command_timeout(ctx.config.setup_timeout);

    let channel = match setup(&client, &ctx).await {
        Ok(channel) => channel,
        Err(why) => {
            tracing::warn!(error = %why, "outbound session set-up failed; closing");
            let _ = client.disconnect().await;
            return SessionReport {
                end: SessionEnd::SetupFailed(why),
                uuid: String::new(),
                timeline: Vec::new(),
            };
        }
    };
    client.set_command_timeout(ctx.config.command_timeout);

    let mut call = Call::new(client, events, channel, ctx.clone());
    if options.record_timeline {
        call.record_timeline();
    }
    let span = tracing::info_span!(
        "call",
        uuid = %call.uuid,
        account = tracing::field::Empty,
        callflow = tracing::field::Empty,
        number = call.destination_number().unwrap_or_default(),
    );
    let end = drive(&mut call).instrument(span).await;
    let uuid = call.uuid.clone();
    finish(&mut call, &end).await;
    SessionReport {
        end,
        uuid,
        timeline: call.take_timeline(),
    }
}

async fn setup(
    client: &EslClient,
    ctx: &EngineContext,
) -> Result<freeswitch_esl_tokio::EslResponse, String> {
    let channel = client
        .connect_session()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    client
        .myevents(EventFormat::Plain)
        .await
        .map_err(|e| format!("myevents: {e}"))?;
    client
        .linger(Some(ctx.config.linger))
        .await
        .map_err(|e| format!("linger: {e}"))?;
    client.resume().await.map_err(|e| format!("resume: {e}"))?;
    // myevents subscribes to ~20 event types, most carrying every channel variable (~6 KB each).
    // The engine reads only a few; dropping the rest halves what FreeSWITCH serialises and what
    // we parse per call. Not fatal: without `full` control the switch refuses it.
    if let Err(error) = client.nixevent_raw(UNUSED_EVENTS).await {
        tracing::debug!(%error, "nixevent refused; receiving all of myevents");
    }
    Ok(channel)
}

/// myevents types the engine never reads (it needs CHANNEL_EXECUTE_COMPLETE, CHANNEL_ANSWER,
/// CHANNEL_HANGUP, CHANNEL_HANGUP_COMPLETE, CHANNEL_BRIDGE, CHANNEL_UNBRIDGE, CHANNEL_DATA, DTMF).
pub const UNUSED_EVENTS: &str = "CHANNEL_EXECUTE CHANNEL_STATE CHANNEL_PARK CHANNEL_UNPARK \
CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_ORIGINATE CHANNEL_OUTGOING CHANNEL_UUID \
CHANNEL_APPLICATION CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA DETECTED_SPEECH TALK NOTALK";

/// Picks the account and the callflow, then runs it.
async fn drive(call: &mut Call) -> SessionEnd {
    let Some(account_id) = resolve_account(call) else {
        tracing::warn!(
            domain = call.var("domain_name").unwrap_or_default(),
            "no account for this call (no account_id, no realm match, no default); rejecting"
        );
        call.note(TimelineEntry::Note {
            text: "no account: UNALLOCATED_NUMBER".into(),
        });
        let _ = call.hangup(UNALLOCATED).await;
        return SessionEnd::Rejected("no account".into());
    };
    tracing::Span::current().record("account", account_id.as_str());
    call.account_id = account_id.clone();
    identify_caller_device(call);

    let number = call.destination_number().unwrap_or_default().to_string();
    let Some(route) = call.ctx.store.routing().lookup(&account_id, &number) else {
        tracing::info!(%number, "no callflow for the dialled number; UNALLOCATED_NUMBER");
        call.note(TimelineEntry::Note {
            text: format!("no callflow for {number}: UNALLOCATED_NUMBER"),
        });
        let _ = call.hangup(UNALLOCATED).await;
        return SessionEnd::Rejected(format!("no callflow for {number}"));
    };
    let (flow, callflow_doc) = match load_flow(call, &account_id, &route) {
        Ok(loaded) => loaded,
        Err(why) => {
            tracing::error!(callflow = %route.callflow_id, error = %why, "callflow cannot be loaded; UNALLOCATED_NUMBER");
            let _ = call.hangup(UNALLOCATED).await;
            return SessionEnd::Rejected(why);
        }
    };
    tracing::Span::current().record("callflow", &*route.callflow_id);
    call.callflow_id = route.callflow_id.to_string();
    expose_route(call, &route);
    enable_metaflows(call, &callflow_doc).await;
    call.note(TimelineEntry::Note {
        text: format!(
            "routed {number} to callflow {} ({:?})",
            route.callflow_id, route.kind
        ),
    });
    SessionEnd::Flow(run_flow(call, flow).await)
}

fn load_flow(call: &Call, account_id: &str, route: &RouteMatch) -> Result<(Node, Value), String> {
    let doc = call
        .ctx
        .store
        .document(account_id, "callflows", &route.callflow_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("callflow {} vanished", route.callflow_id))?;
    let flow = doc
        .get("flow")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let node = Node::from_value(&flow).map_err(|e| e.to_string())?;
    Ok((node, doc))
}

/// Merges the call's metaflows (callflow > user > device > account, see
/// [`crate::engine::metaflow`]) and turns detection on; asks FreeSWITCH to divert the peer-leg
/// reports to this socket when the far end is listened to.
async fn enable_metaflows(call: &mut Call, callflow_doc: &Value) {
    let store = call.ctx.store.clone();
    let account = call.account_id.clone();
    let owned = |collection: &str, key: &str, field: &str| -> Option<Value> {
        let id = call.kvs.get(key)?.as_str()?;
        store
            .document(&account, collection, id)
            .ok()
            .flatten()?
            .get(field)
            .cloned()
    };
    let user = owned("users", "owner_id", "metaflows");
    let device = owned("devices", "device_id", "metaflows");
    let account_level = store
        .document(&account, "metaflows", &account)
        .ok()
        .flatten();
    let mut sources: Vec<&Value> = Vec::new();
    if let Some(own) = callflow_doc.get("metaflow") {
        sources.push(own);
    }
    sources.extend(user.iter());
    sources.extend(device.iter());
    sources.extend(account_level.iter());
    let Some(config) = crate::engine::metaflow::MetaflowConfig::merge(&sources) else {
        return;
    };
    let hears_peer = config.listen_on.hears_peer();
    call.note(TimelineEntry::Note {
        text: format!(
            "metaflows on (binding {}, listen_on {:?}, {} numbers, {} patterns)",
            config.binding_digit,
            config.listen_on,
            config.numbers.len(),
            config.patterns.len()
        ),
    });
    call.enable_metaflows(config);
    if hears_peer {
        if let Err(error) = call.client().divert_events(true).await {
            tracing::warn!(%error, "divert_events failed: far-end metaflows will not be heard");
        }
    }
}

/// Puts Kazoo's route context (`cf_capture_group`, named captures) where modules read it,
/// replacing the previous route's (a hunt re-routes the call mid-flow).
pub(crate) fn expose_route(call: &mut Call, route: &RouteMatch) {
    call.kvs.remove("capture_group");
    call.kvs.remove("capture_groups");
    if let Some(capture) = &route.capture_group {
        call.kvs
            .insert("capture_group".into(), Value::String(capture.clone()));
    }
    if !route.named_captures.is_empty() {
        let named = route
            .named_captures
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        call.kvs
            .insert("capture_groups".into(), Value::Object(named));
    }
    call.kvs.insert(
        "callflow_id".into(),
        Value::String(route.callflow_id.to_string()),
    );
}

/// For a call from a phone that authenticated to FreeSWITCH (`sip_auth_username`), records the
/// caller's device and its owner, so bridging skips the caller's own phone and device/user
/// metaflows and variables apply.
fn identify_caller_device(call: &mut Call) {
    // Phones registered through callflowd's directory carry `device_id` / `owner_id` variables
    // (set by FreeSWITCH from the directory entry); trust them when they name this account's
    // device.
    if let Some(device_id) = call
        .var("device_id")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    {
        if let Ok(Some(device)) = call
            .ctx
            .store
            .document(&call.account_id, "devices", &device_id)
        {
            call.kvs
                .insert("device_id".into(), Value::String(device_id));
            if let Some(owner) = device.get("owner_id").and_then(Value::as_str) {
                call.kvs
                    .insert("owner_id".into(), Value::String(owner.to_string()));
            }
            return;
        }
    }
    let Some(username) = call.var("sip_auth_username").filter(|s| !s.is_empty()) else {
        return;
    };
    let username = username.to_string();
    let devices =
        match call
            .ctx
            .store
            .documents_where(&call.account_id, "devices", "sip.username", &username)
        {
            Ok(devices) => devices,
            Err(error) => {
                tracing::error!(%error, "device lookup failed");
                return;
            }
        };
    let Some(device) = devices.into_iter().next() else {
        return;
    };
    if let Some(id) = device.get("id").and_then(Value::as_str) {
        call.kvs
            .insert("device_id".into(), Value::String(id.to_string()));
    }
    if let Some(owner) = device.get("owner_id").and_then(Value::as_str) {
        call.kvs
            .insert("owner_id".into(), Value::String(owner.to_string()));
    }
}

/// `variable_account_id`, else the realm of `variable_domain_name` / `variable_sip_req_host`,
/// else the configured default account.
fn resolve_account(call: &Call) -> Option<String> {
    let store = &call.ctx.store;
    if let Some(id) = call.var("account_id").filter(|s| !s.is_empty()) {
        match store.account(id) {
            Ok(Some(account)) => return Some(account.id),
            Ok(None) => tracing::warn!(account_id = id, "channel names an unknown account_id"),
            Err(error) => tracing::error!(%error, "account lookup failed"),
        }
    }
    for var in ["domain_name", "sip_req_host"] {
        if let Some(realm) = call.var(var).filter(|s| !s.is_empty()) {
            match store.account_by_realm(realm) {
                Ok(Some(account)) => return Some(account.id),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "realm lookup failed"),
            }
        }
    }
    call.ctx.config.default_account.clone()
}

/// Ends the channel the way the flow asked, then waits for HANGUP_COMPLETE and closes.
async fn finish(call: &mut Call, end: &SessionEnd) {
    let linger = call.ctx.config.linger;
    match end {
        SessionEnd::SetupFailed(_) => {}
        SessionEnd::Rejected(_) | SessionEnd::Flow(FlowEnd::Hangup(_)) => {
            if let SessionEnd::Flow(FlowEnd::Hangup(cause)) = end {
                if !call.is_over() {
                    let _ = call.hangup(cause).await;
                }
            }
            call.wait_hangup_complete(linger).await;
        }
        SessionEnd::Flow(FlowEnd::Released)
        | SessionEnd::Flow(FlowEnd::Ended(CallEnded::Transferred)) => {}
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::HandedBack)) => {
            // `resume` was sent at set-up: closing the socket continues the dialplan.
            tracing::warn!("shutting down: handing the call back to the dialplan");
        }
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::HungUp(_))) => {
            call.wait_hangup_complete(linger).await;
        }
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::Interrupted)) => {
            // Only a requested branch interrupts, and the executor always takes it; should a
            // module ever swallow it, end the call like a finished flow.
            let _ = call.hangup("NORMAL_CLEARING").await;
            call.wait_hangup_complete(linger).await;
        }
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::Deadline)) => {
            tracing::warn!("call deadline reached: hanging up");
            let _ = call.kill("RECOVERY_ON_TIMER_EXPIRE").await;
            call.wait_hangup_complete(linger).await;
        }
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::Refused(what)))
        | SessionEnd::Flow(FlowEnd::Ended(CallEnded::Timeout(what))) => {
            // FreeSWITCH stopped answering: hand the call back to the dialplan (resume is set).
            tracing::warn!(%what, "switch stopped answering; handing the call back to the dialplan");
        }
        SessionEnd::Flow(FlowEnd::Ended(CallEnded::Disconnected(why))) => {
            tracing::warn!(%why, "socket lost mid-call");
        }
    }
    let _ = call.client().disconnect().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::{
        ACCOUNT, apps, config, marker, markers, node, run_with_config, run_with_store, script,
        store_with_flow, validated,
    };
    use crate::fakeswitch::{CallEnd, CallScript, Fault, HangupBy};
    use crate::store::Account;
    use crate::store::memory::MemStore;
    use serde_json::json;
    use std::time::Duration;

    const OTHER: &str = "0123456789abcdef0123456789abcde2";
    const FALLBACK: &str = "0123456789abcdef0123456789abcde3";
    const NOWHERE: &str = "nowhere.example";

    /// Three accounts with a callflow on 1000 each, setting a marker that names the account:
    /// `test` (realm test.callflowd), `other` (realm other.callflowd), `fallback` (no realm).
    fn three_accounts() -> Arc<MemStore> {
        let store = store_with_flow(validated(marker("test", json!({}))));
        for (id, name, realm) in [
            (OTHER, "other", Some("other.callflowd")),
            (FALLBACK, "fallback", None),
        ] {
            store.add_account(Account {
                id: id.into(),
                name: name.into(),
                realm: realm.map(str::to_string),
            });
            store.put(
                id,
                "callflows",
                &format!("cf{}", &id[2..]),
                json!({"numbers": ["1000"], "flow": validated(marker(name, json!({})))}),
            );
        }
        store
    }

    fn no_account_call() -> CallScript {
        CallScript::new("1000").account(None).domain(NOWHERE)
    }

    #[tokio::test]
    async fn account_id_variable_comes_first() {
        let sim = run_with_store(three_accounts(), script().domain("other.callflowd")).await;
        assert_eq!(markers(&sim), ["test"]);
    }

    #[tokio::test]
    async fn unknown_account_id_falls_back_to_the_realm() {
        let script = CallScript::new("1000")
            .account(Some("ffffffffffffffffffffffffffffffff"))
            .domain("other.callflowd");
        let sim = run_with_store(three_accounts(), script).await;
        assert_eq!(markers(&sim), ["other"]);
    }

    #[tokio::test]
    async fn realm_of_domain_name_then_sip_req_host() {
        let by_domain = CallScript::new("1000")
            .account(None)
            .domain("other.callflowd");
        let sim = run_with_store(three_accounts(), by_domain).await;
        assert_eq!(markers(&sim), ["other"]);

        // domain_name unknown: the request host decides.
        let by_host = no_account_call().var("sip_req_host", "other.callflowd");
        let sim = run_with_store(three_accounts(), by_host).await;
        assert_eq!(markers(&sim), ["other"]);

        // Both known: domain_name wins.
        let both = CallScript::new("1000")
            .account(None)
            .domain("test.callflowd")
            .var("sip_req_host", "other.callflowd");
        let sim = run_with_store(three_accounts(), both).await;
        assert_eq!(markers(&sim), ["test"]);
    }

    #[tokio::test]
    async fn default_account_when_nothing_else_matches() {
        let with_default = crate::engine::EngineConfig {
            default_account: Some(FALLBACK.into()),
            ..config()
        };
        let sim = run_with_config(three_accounts(), with_default, no_account_call()).await;
        assert_eq!(markers(&sim), ["fallback"]);
    }

    #[tokio::test]
    async fn no_account_at_all_is_unallocated() {
        let sim = run_with_store(three_accounts(), no_account_call()).await;
        assert_eq!(sim.report.end, SessionEnd::Rejected("no account".into()));
        assert!(apps(&sim).is_empty());
        assert_eq!(sim.transcript.hangup_cause(), Some(UNALLOCATED));
        assert_eq!(
            sim.transcript.hangup.as_ref().map(|h| h.by.clone()),
            Some(HangupBy::Controller)
        );
    }

    /// ACCOUNT with an exact number 1234, a pattern `^12(\d+)$` (branch_bnumber on the capture
    /// group) and a `no_match` callflow.
    fn routed_store() -> Arc<MemStore> {
        let store = store_with_flow(validated(marker("thousand", json!({}))));
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000b01",
            json!({"numbers": ["1234"], "flow": validated(marker("number", json!({})))}),
        );
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000b02",
            json!({"patterns": ["^12(\\d+)$"], "flow": validated(node(
                "branch_bnumber",
                json!({}),
                json!({
                    "34": marker("pattern-34", json!({})),
                    "99": marker("pattern-99", json!({})),
                    "_": marker("pattern-other", json!({}))
                }),
            ))}),
        );
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000b03",
            json!({"numbers": ["no_match"], "flow": validated(marker("no_match", json!({})))}),
        );
        store
    }

    fn dial(number: &str) -> CallScript {
        CallScript::new(number).account(Some(ACCOUNT))
    }

    #[tokio::test]
    async fn exact_number_beats_a_matching_pattern() {
        let sim = run_with_store(routed_store(), dial("1234")).await;
        assert_eq!(markers(&sim), ["number"]);
    }

    #[tokio::test]
    async fn pattern_capture_group_reaches_the_module() {
        let sim = run_with_store(routed_store(), dial("1299")).await;
        assert_eq!(markers(&sim), ["pattern-99"]);
        let sim = run_with_store(routed_store(), dial("12777")).await;
        assert_eq!(markers(&sim), ["pattern-other"]);
    }

    #[tokio::test]
    async fn no_match_catches_unknown_digits_only() {
        let sim = run_with_store(routed_store(), dial("5555")).await;
        assert_eq!(markers(&sim), ["no_match"]);
        // Not all digits: no_match does not apply.
        let sim = run_with_store(routed_store(), dial("*55")).await;
        assert_eq!(
            sim.report.end,
            SessionEnd::Rejected("no callflow for *55".into())
        );
        assert_eq!(sim.transcript.hangup_cause(), Some(UNALLOCATED));
    }

    #[tokio::test]
    async fn unknown_number_is_unallocated() {
        let sim = run_with_store(store_with_flow(json!({})), dial("5555")).await;
        assert_eq!(
            sim.report.end,
            SessionEnd::Rejected("no callflow for 5555".into())
        );
        assert!(apps(&sim).is_empty());
        assert_eq!(sim.transcript.hangup_cause(), Some(UNALLOCATED));
    }

    fn long_playback() -> Arc<MemStore> {
        store_with_flow(validated(node(
            "play",
            json!({"id": "silence_stream://5000", "answer": false}),
            json!({"_": marker("after", json!({}))}),
        )))
    }

    #[tokio::test]
    async fn switch_dropping_the_socket_mid_playback_ends_the_call_cleanly() {
        let script = script().fault(Fault::DropAfter(Duration::from_millis(800)));
        let sim = run_with_store(long_playback(), script).await;
        assert!(
            matches!(
                sim.report.end,
                SessionEnd::Flow(FlowEnd::Ended(CallEnded::Disconnected(_)))
            ),
            "{:?}",
            sim.report.end
        );
        assert!(markers(&sim).is_empty());
        assert!(matches!(sim.transcript.end, Some(CallEnd::Fault(_))));
    }

    #[tokio::test]
    async fn switch_dropping_the_socket_on_a_command_ends_the_call_cleanly() {
        // Commands: 1 connect, 2 myevents, 3 linger, 4 resume, 5 set terminators, 6 playback.
        let script = script().fault(Fault::DropOnCommand(6));
        let sim = run_with_store(long_playback(), script).await;
        assert!(
            matches!(
                sim.report.end,
                SessionEnd::Flow(FlowEnd::Ended(CallEnded::Disconnected(_)))
            ),
            "{:?}",
            sim.report.end
        );
        assert!(markers(&sim).is_empty());
    }

    #[tokio::test]
    async fn switch_dropping_the_socket_during_set_up_fails_the_session() {
        let script = script().fault(Fault::DropOnCommand(2));
        let sim = run_with_store(long_playback(), script).await;
        assert!(
            matches!(sim.report.end, SessionEnd::SetupFailed(_)),
            "{:?}",
            sim.report.end
        );
        assert!(apps(&sim).is_empty());
    }
}

//! Shared bridging for `device`, `user`, `group`, `ring_group` (and `resources` legs): turns
//! endpoint documents into FreeSWITCH dial strings and runs `bridge`.
//!
//! ESL per bridge: `execute multiset ^^|continue_on_fail=true|hangup_after_bridge=false` (once per
//! call: a failed bridge must give us a failure branch instead of hanging the caller up, and an
//! answered bridge must hand control back to the flow), `execute set ringback=<media>` when a
//! ringback is configured, then `execute bridge <dial string>`:
//! `{originate_timeout=T,ignore_early_media=true}[leg_timeout=t,leg_delay_start=d]user/1001@realm,...`
//! (`,` rings legs at once, with `ignore_early_media=true` when there are several; `|` one after
//! the other, each attempt for up to `originate_timeout`). Results come from the EXECUTE_COMPLETE's
//! variables: an answered bridge has `last_bridge_role`/`bridge_hangup_cause` or a SUCCESS
//! `DIALSTATUS`; a failure carries `originate_failed_cause` (USER_BUSY, NO_ANSWER, ...) and the
//! SIP code (`last_bridge_proto_specific_hangup_cause` = `sip:486`, or `sip_term_status`).
//! A failure branches to the cause child, then `sip:<code>`, then `_` (Kazoo
//! `cf_util:handle_bridge_failure`).

use super::Next;
use super::media::{self, Media};
use crate::engine::call::{Call, CallEnded, Completion};
use crate::store::field_at;
use serde_json::Value;

/// One leg of a bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    /// FreeSWITCH endpoint (`user/1001@realm`, `loopback/5551234/default`, `sofia/...`).
    pub dial: String,
    /// Seconds before this leg starts ringing.
    pub delay: u32,
    /// Seconds this leg rings (None: the bridge-wide timeout).
    pub timeout: Option<u32>,
    /// Extra per-leg channel variables.
    pub vars: Vec<(String, String)>,
    /// The device this leg rings, if any.
    pub device_id: Option<String>,
}

/// How legs ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// All at once (`,`).
    Simultaneous,
    /// One after another (`|`).
    Single,
}

impl Strategy {
    /// Kazoo's names; `weighted_random` is ordered by the caller, then rung singly.
    pub fn parse(name: &str) -> Strategy {
        if name == "single" || name == "weighted_random" {
            Strategy::Single
        } else {
            Strategy::Simultaneous
        }
    }
}

/// Options of endpoint resolution.
#[derive(Debug, Clone, Copy)]
pub struct EndpointOptions {
    /// Ring the caller's own device too.
    pub can_call_self: bool,
    /// Ignore a device's `call_forward`.
    pub ignore_forward: bool,
    /// Leg delay (s).
    pub delay: u32,
    /// Leg timeout (s).
    pub timeout: Option<u32>,
}

/// The outcome of one `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeResult {
    /// Someone answered; the bridge has ended since.
    Answered,
    /// Nobody answered.
    Failed {
        /// Q.850 cause name (USER_BUSY, NO_ANSWER, ...).
        cause: String,
        /// `sip:<code>` when known.
        sip_code: Option<String>,
    },
}

fn text<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    field_at(doc, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Characters a dial-string endpoint cannot carry (they delimit legs and variables).
fn clean(value: &str) -> String {
    value.replace([',', '|', '[', ']', '{', '}', '\'', '"', '\r', '\n'], "")
}

/// A channel-variable value safe inside a leg's `[...]` (no quotes, brackets, braces, line
/// breaks, `|` or `;`; commas are kept: [`dial_string`] switches to the `^^;` separator).
pub fn leg_value(value: &str) -> String {
    value.replace(['|', ';', '[', ']', '{', '}', '\'', '"', '\r', '\n'], "")
}

/// The legs that ring one device document (nothing for a disabled device, the caller's own
/// device unless `can_call_self`, or a device without SIP credentials; a forwarded device rings
/// its forward number through the dialplan, instead of or besides the device).
pub fn device_legs(call: &Call, device: &Value, options: &EndpointOptions) -> Vec<Leg> {
    let device_id = text(device, "id").map(str::to_string);
    if field_at(device, "enabled").and_then(Value::as_bool) == Some(false) {
        return Vec::new();
    }
    let own = call.kvs.get("device_id").and_then(Value::as_str);
    if !options.can_call_self && device_id.is_some() && own == device_id.as_deref() {
        tracing::debug!(device = ?device_id, "skipping the caller's own device");
        return Vec::new();
    }
    let mut legs = Vec::new();
    let forward_number = (!options.ignore_forward
        && field_at(device, "call_forward.enabled").and_then(Value::as_bool) == Some(true))
    .then(|| text(device, "call_forward.number"))
    .flatten();
    let substitute = field_at(device, "call_forward.substitute")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if let Some(number) = forward_number {
        legs.push(Leg {
            dial: format!("loopback/{}/default", clean(number)),
            delay: options.delay,
            timeout: options.timeout,
            vars: vec![("account_id".into(), leg_value(&call.account_id))],
            device_id: device_id.clone(),
        });
        if substitute {
            return legs;
        }
    }
    let realm = text(device, "sip.realm").map(str::to_string).or_else(|| {
        call.ctx
            .store
            .account(&call.account_id)
            .ok()
            .flatten()
            .and_then(|a| a.realm)
    });
    match (text(device, "sip.username"), realm) {
        (Some(username), Some(realm)) => legs.push(Leg {
            dial: format!("user/{}@{}", clean(username), clean(&realm)),
            delay: options.delay,
            timeout: options.timeout,
            vars: Vec::new(),
            device_id,
        }),
        _ => tracing::warn!(device = ?device_id, "device has no sip.username or realm; not rung"),
    }
    legs
}

/// The legs of every enabled device a user owns.
pub fn user_legs(call: &Call, user_id: &str, options: &EndpointOptions) -> Vec<Leg> {
    match call.ctx.store.document(&call.account_id, "users", user_id) {
        Ok(Some(user)) if field_at(&user, "enabled").and_then(Value::as_bool) != Some(false) => {}
        Ok(Some(_)) => return Vec::new(),
        Ok(None) => {
            tracing::warn!(user = user_id, "user not found");
            return Vec::new();
        }
        Err(error) => {
            tracing::error!(%error, "user lookup failed");
            return Vec::new();
        }
    }
    let devices = call
        .ctx
        .store
        .documents_where(&call.account_id, "devices", "owner_id", user_id)
        .unwrap_or_else(|error| {
            tracing::error!(%error, "device lookup failed");
            Vec::new()
        });
    devices
        .iter()
        .flat_map(|device| device_legs(call, device, options))
        .collect()
}

/// The legs of a group document's `endpoints` (`{id: {"type": "device"|"user"}}`).
pub fn group_legs(call: &Call, group_id: &str, options: &EndpointOptions) -> Vec<Leg> {
    let group = match call
        .ctx
        .store
        .document(&call.account_id, "groups", group_id)
    {
        Ok(Some(group)) => group,
        Ok(None) => {
            tracing::warn!(group = group_id, "group not found");
            return Vec::new();
        }
        Err(error) => {
            tracing::error!(%error, "group lookup failed");
            return Vec::new();
        }
    };
    let Some(members) = field_at(&group, "endpoints").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut legs = Vec::new();
    for (id, member) in members {
        match member
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("device")
        {
            "user" => legs.extend(user_legs(call, id, options)),
            _ => {
                if let Ok(Some(device)) = call.ctx.store.document(&call.account_id, "devices", id) {
                    legs.extend(device_legs(call, &device, options));
                }
            }
        }
    }
    legs
}

/// Builds the dial string for `legs`.
pub fn dial_string(legs: &[Leg], strategy: Strategy, timeout: Option<u32>) -> String {
    let mut global = Vec::new();
    // For `|` FreeSWITCH restarts the originate timer for each group, so the timeout bounds every
    // attempt alike; without it a leg with no `leg_timeout` (a carrier gateway) would ring for
    // FreeSWITCH's 60 s default whatever the flow says.
    if let Some(timeout) = timeout.filter(|t| *t > 0) {
        global.push(format!("originate_timeout={timeout}"));
    }
    if strategy == Strategy::Simultaneous && legs.len() > 1 {
        global.push("ignore_early_media=true".to_string());
    }
    let separator = match strategy {
        Strategy::Simultaneous => ",",
        Strategy::Single => "|",
    };
    let body = legs
        .iter()
        .map(|leg| {
            let mut vars: Vec<String> = leg
                .vars
                .iter()
                .map(|(k, v)| format!("{}={v}", clean(k)))
                .collect();
            if let Some(t) = leg.timeout.filter(|t| *t > 0) {
                vars.push(format!("leg_timeout={t}"));
            }
            if leg.delay > 0 {
                vars.push(format!("leg_delay_start={}", leg.delay));
            }
            if vars.is_empty() {
                leg.dial.clone()
            } else if vars.iter().any(|v| v.contains(',')) {
                // A value with commas: FreeSWITCH's `^^<sep>` form changes the separator.
                format!("[^^;{}]{}", vars.join(";"), leg.dial)
            } else {
                format!("[{}]{}", vars.join(","), leg.dial)
            }
        })
        .collect::<Vec<_>>()
        .join(separator);
    if global.is_empty() {
        body
    } else {
        format!("{{{}}}{body}", global.join(","))
    }
}

/// Reads a finished bridge's outcome from its EXECUTE_COMPLETE.
pub fn classify(completion: &Completion) -> BridgeResult {
    let var = |name: &str| completion.var(name).filter(|v| !v.is_empty());
    // Every originate rewrites `originate_disposition` / `DIALSTATUS` (SUCCESS or the failure),
    // while `last_bridge_role` and `bridge_hangup_cause` stay set from an earlier answered bridge
    // of the call; so the latter decide only when the switch set neither of the former.
    let answered = match var("originate_disposition").or_else(|| var("DIALSTATUS")) {
        Some(disposition) => disposition == "SUCCESS",
        None => var("last_bridge_role").is_some() || var("bridge_hangup_cause").is_some(),
    };
    if answered {
        return BridgeResult::Answered;
    }
    let response = completion.response.as_str();
    let cause = var("originate_failed_cause")
        .or_else(|| var("originate_disposition"))
        .or_else(|| {
            (response != "_none_" && response.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .then_some(response)
        })
        .unwrap_or("NORMAL_TEMPORARY_FAILURE")
        .to_string();
    let sip_code = var("last_bridge_proto_specific_hangup_cause")
        .or_else(|| var("proto_specific_hangup_cause"))
        .filter(|v| v.starts_with("sip:"))
        .map(str::to_string)
        .or_else(|| var("sip_term_status").map(|code| format!("sip:{code}")));
    BridgeResult::Failed { cause, sip_code }
}

/// The executor step for a failed bridge: the cause child, then `sip:<code>`, then `_`.
pub fn failure_next(cause: &str, sip_code: Option<&str>) -> Next {
    let mut keys = vec![cause.to_string()];
    if let Some(code) = sip_code {
        keys.push(code.to_string());
    }
    Next::ContinueAny(keys)
}

/// Whether a node has a child for this failure (ring_group repeats only unhandled failures).
pub fn failure_handled(
    node: &crate::callflow::model::Node,
    cause: &str,
    sip_code: Option<&str>,
) -> bool {
    node.children.contains_key(cause) || sip_code.is_some_and(|c| node.children.contains_key(c))
}

/// Runs one bridge to `legs` and reports how it went.
pub async fn bridge(
    call: &mut Call,
    legs: &[Leg],
    strategy: Strategy,
    timeout: Option<u32>,
    ringback: Option<&str>,
) -> Result<BridgeResult, CallEnded> {
    prepare(call).await?;
    if let Some(ringback) = ringback.filter(|r| !r.is_empty()) {
        let value = match media::resolve_for(call, ringback) {
            Media::Playback(path) => path,
            Media::Speak(_) => ringback.to_string(),
        };
        call.set_var("ringback", &value).await?;
    }
    // Far-end metaflows: each leg matches codes itself and reports them to this channel.
    let peer_binding = call
        .metaflows()
        .filter(|m| m.listen_on.hears_peer())
        .map(|m| m.peer_binding());
    let with_binding: Vec<Leg>;
    let legs = match peer_binding {
        Some(binding) => {
            with_binding = legs
                .iter()
                .cloned()
                .map(|mut leg| {
                    leg.vars.extend(binding.iter().cloned());
                    leg
                })
                .collect();
            &with_binding[..]
        }
        None => legs,
    };
    let dial = dial_string(legs, strategy, timeout);
    let completion = call.execute_long("bridge", &dial).await?;
    Ok(classify(&completion))
}

/// Sets the variables every bridge needs, once per call.
pub async fn prepare(call: &mut Call) -> Result<(), CallEnded> {
    if call.kvs.contains_key("bridge_prepared") {
        return Ok(());
    }
    call.execute(
        "multiset",
        "^^|continue_on_fail=true|hangup_after_bridge=false",
    )
    .await?;
    call.kvs.insert("bridge_prepared".into(), Value::Bool(true));
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    //! Unit tests of the dial string, end-to-end tests of what every bridging module shares, and
    //! the fixtures the bridging modules' tests use.

    use super::*;
    use crate::engine::executor::FlowEnd;
    use crate::engine::session::SessionEnd;
    use crate::engine::simulate::Simulation;
    use crate::engine::testkit::{
        ACCOUNT, add_callflow, apps, branches, node, run_with_store, script, store_for,
    };
    use crate::fakeswitch::{BridgeOutcome, HangupBy};
    use crate::store::memory::MemStore;
    use serde_json::json;
    use std::time::Duration;

    /// What every bridging module sends first (once per call).
    pub(crate) const PREPARE: &str = "multiset ^^|continue_on_fail=true|hangup_after_bridge=false";
    /// The test account's realm (`user/<name>@REALM`).
    pub(crate) const REALM: &str = "test.callflowd";
    /// Document ids (32 hex digits, as the schemas require).
    pub(crate) const DEV_A: &str = "dddddddddddddddddddddddddddd0001";
    /// See [`DEV_A`].
    pub(crate) const DEV_B: &str = "dddddddddddddddddddddddddddd0002";
    /// See [`DEV_A`].
    pub(crate) const DEV_C: &str = "dddddddddddddddddddddddddddd0003";
    /// See [`DEV_A`].
    pub(crate) const USER_A: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeee0001";
    /// See [`DEV_A`].
    pub(crate) const USER_B: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeee0002";
    /// See [`DEV_A`].
    pub(crate) const GROUP_A: &str = "cccccccccccccccccccccccccccc0001";

    /// A device registered as `username` (realm: the account's).
    pub(crate) fn device(username: &str) -> Value {
        json!({"name": username, "sip": {"username": username}})
    }

    /// A device of `owner`.
    pub(crate) fn owned_device(username: &str, owner: &str) -> Value {
        json!({"name": username, "sip": {"username": username}, "owner_id": owner})
    }

    /// Stores a document in the test account.
    pub(crate) fn put(store: &MemStore, collection: &str, id: &str, doc: Value) {
        store.put(ACCOUNT, collection, id, doc);
    }

    /// A `play` node without children (a recognisable leaf: `playback <id>`).
    pub(crate) fn play(id: &str) -> Value {
        node("play", json!({"id": id}), json!({}))
    }

    /// The arguments of every `bridge` the switch was asked to run.
    pub(crate) fn bridges(sim: &Simulation) -> Vec<String> {
        apps(sim)
            .into_iter()
            .filter_map(|a| a.strip_prefix("bridge ").map(str::to_string))
            .collect()
    }

    /// The flow ran to its end and the engine hung up with `cause`.
    pub(crate) fn assert_hung_up_by_engine(sim: &Simulation, cause: &str) {
        assert_eq!(
            sim.report.end,
            SessionEnd::Flow(FlowEnd::Hangup(cause.into())),
            "{:#?}",
            sim.report.timeline
        );
        let hangup = sim.transcript.hangup.as_ref().expect("the channel hung up");
        assert_eq!(hangup.cause, cause);
        assert_eq!(hangup.by, HangupBy::Controller);
    }

    /// The caller hung up while the flow ran; nothing was sent afterwards.
    pub(crate) fn assert_caller_hung_up(sim: &Simulation) {
        assert!(
            matches!(
                sim.report.end,
                SessionEnd::Flow(FlowEnd::Ended(crate::engine::call::CallEnded::HungUp(_)))
            ),
            "{:?}",
            sim.report.end
        );
        let hangup = sim.transcript.hangup.as_ref().expect("the channel hung up");
        assert_eq!(hangup.by, HangupBy::Caller);
    }

    /// The fake switch does not model the SIP code of a failed originate; a failed bridge's
    /// EXECUTE_COMPLETE carries the channel's variables, so a dialplan-set
    /// `last_bridge_proto_specific_hangup_cause` stands in for the one FreeSWITCH would set.
    pub(crate) fn with_sip_code(
        script: crate::fakeswitch::CallScript,
        code: &str,
    ) -> crate::fakeswitch::CallScript {
        script.var("last_bridge_proto_specific_hangup_cause", code)
    }

    fn leg(dial: &str, delay: u32, timeout: Option<u32>) -> Leg {
        Leg {
            dial: dial.into(),
            delay,
            timeout,
            vars: vec![],
            device_id: None,
        }
    }

    #[test]
    fn dial_strings() {
        let legs = [
            leg("user/1001@r", 0, Some(20)),
            leg("user/1002@r", 5, Some(15)),
        ];
        assert_eq!(
            dial_string(&legs, Strategy::Simultaneous, Some(30)),
            "{originate_timeout=30,ignore_early_media=true}[leg_timeout=20]user/1001@r,[leg_timeout=15,leg_delay_start=5]user/1002@r"
        );
        assert_eq!(
            dial_string(&legs[..1], Strategy::Single, Some(30)),
            "{originate_timeout=30}[leg_timeout=20]user/1001@r"
        );
        assert_eq!(
            dial_string(&legs, Strategy::Single, None),
            "[leg_timeout=20]user/1001@r|[leg_timeout=15,leg_delay_start=5]user/1002@r"
        );
        assert_eq!(clean("a,b|c[d]{e}"), "abcde");
    }

    #[test]
    fn failure_keys() {
        assert_eq!(
            failure_next("USER_BUSY", Some("sip:486")),
            Next::ContinueAny(vec!["USER_BUSY".into(), "sip:486".into()])
        );
    }

    #[tokio::test]
    async fn prepares_once_per_call_and_sets_the_ringback() {
        let flow = node(
            "device",
            json!({"id": DEV_A, "ringback": "tone_stream://%(2000,4000,440,480)"}),
            json!({"NO_ANSWER": node("device", json!({"id": DEV_B}), json!({}))}),
        );
        let store = store_for(flow);
        put(&store, "devices", DEV_A, device("2001"));
        put(&store, "devices", DEV_B, device("2002"));
        let sim = run_with_store(
            store,
            script().bridge("user/2001@", BridgeOutcome::failed("NO_ANSWER")),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                PREPARE.to_string(),
                "set ringback=tone_stream://%(2000,4000,440,480)".into(),
                format!("bridge {{originate_timeout=20}}[leg_timeout=20]user/2001@{REALM}"),
                format!("bridge {{originate_timeout=20}}[leg_timeout=20]user/2002@{REALM}"),
            ]
        );
        assert_eq!(branches(&sim), ["NO_ANSWER", "stop"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    /// A callflow branch whose device answers returns (stop pops the stack) to the caller's `_`,
    /// which bridges again; that second bridge fails and must take its failure child, although
    /// the first bridge left `last_bridge_role` / `bridge_hangup_cause` on the channel.
    #[tokio::test]
    async fn a_bridge_after_an_answered_one_reads_its_own_result() {
        const SUB: &str = "cf000000000000000000000000000002";
        let flow = node(
            "callflow",
            json!({"id": SUB}),
            json!({"_": node("device", json!({"id": DEV_B}), json!({"USER_BUSY": play("busy.wav")}))}),
        );
        let store = store_for(flow);
        add_callflow(
            &store,
            SUB,
            &["2999"],
            &[],
            node("device", json!({"id": DEV_A}), json!({})),
        );
        put(&store, "devices", DEV_A, device("2001"));
        put(&store, "devices", DEV_B, device("2002"));
        let sim = run_with_store(
            store,
            script()
                .bridge(
                    "user/2001@",
                    BridgeOutcome::answered(Duration::from_millis(50)),
                )
                .bridge("user/2002@", BridgeOutcome::failed("USER_BUSY")),
        )
        .await;
        assert_eq!(bridges(&sim).len(), 2, "{:?}", apps(&sim));
        assert_eq!(
            branches(&sim),
            [
                "branch -> device",
                "stop",
                "USER_BUSY",
                "_ (no child: stop)"
            ]
        );
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback busy.wav")
        );
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn failure_child_order_is_cause_then_sip_code_then_default() {
        let children = |keys: &[&str]| {
            let mut map = serde_json::Map::new();
            for key in keys {
                map.insert(key.to_string(), play(&format!("{key}.wav")));
            }
            Value::Object(map)
        };
        for (keys, taken) in [
            (&["USER_BUSY", "sip:486", "_"][..], "USER_BUSY"),
            (&["sip:486", "_"][..], "sip:486"),
            (&["sip:404", "_"][..], "_"),
        ] {
            let flow = node("device", json!({"id": DEV_A}), children(keys));
            let store = store_for(flow);
            put(&store, "devices", DEV_A, device("2001"));
            let sim = run_with_store(
                store,
                with_sip_code(script(), "sip:486").bridge("*", BridgeOutcome::failed("USER_BUSY")),
            )
            .await;
            assert_eq!(
                branches(&sim),
                [taken, "_ (no child: stop)"],
                "children {keys:?}"
            );
            assert_eq!(
                apps(&sim).last().cloned(),
                Some(format!("playback {taken}.wav"))
            );
        }
    }
}

//! Shared bridging for `device`, `user`, `group`, `ring_group` (and `resources` legs): turns
//! endpoint documents into FreeSWITCH dial strings and runs `bridge`.
//!
//! ESL per bridge: `execute multiset ^^|continue_on_fail=true|hangup_after_bridge=false` (once per
//! call: a failed bridge must give us a failure branch instead of hanging the caller up, and an
//! answered bridge must hand control back to the flow), `execute set ringback=<media>` when a
//! ringback is configured, then `execute bridge <dial string>`:
//! `{originate_timeout=T,ignore_early_media=true}[leg_timeout=t,leg_delay_start=d]user/1001@realm,...`
//! (`,` rings legs at once, `|` one after the other). Results come from the EXECUTE_COMPLETE's
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
    if strategy == Strategy::Simultaneous {
        if let Some(timeout) = timeout.filter(|t| *t > 0) {
            global.push(format!("originate_timeout={timeout}"));
        }
        if legs.len() > 1 {
            global.push("ignore_early_media=true".to_string());
        }
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
    let answered = var("last_bridge_role").is_some()
        || var("bridge_hangup_cause").is_some()
        || var("DIALSTATUS") == Some("SUCCESS")
        || var("originate_disposition") == Some("SUCCESS");
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
        let value = match media::resolve(ringback) {
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
mod tests {
    use super::*;

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
            "[leg_timeout=20]user/1001@r"
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
}

//! `ring_group`: rings a list of devices, users and groups — all at once, one by one, or one by
//! one in weighted-random order — with per-member delay and timeout, repeated `repeats` times.
//!
//! ESL: see [`super::bridge`]: one `execute bridge <legs>` per repeat; simultaneous legs are
//! sorted by delay and carry `leg_delay_start`/`leg_timeout`; single/weighted_random legs are
//! joined with `|`. The caller's own device and members with a future `disable_until` are
//! skipped; a device listed twice rings once.
//! Children: answered -> stop; a failure with a cause/`sip:` child -> that child (Kazoo "handled");
//! otherwise the next repeat, then `_`. No member to ring -> `_`.

use super::bridge::{self, BridgeResult, EndpointOptions, Leg, Strategy};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `ring_group` module.
pub struct RingGroup;

/// One member of the group.
#[derive(Debug, Deserialize, Clone)]
pub struct Member {
    /// Device, user or group id.
    pub id: String,
    /// `device`, `user` or `group`.
    pub endpoint_type: String,
    /// Seconds before this member rings.
    #[serde(default)]
    pub delay: u32,
    /// Seconds this member rings.
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// Weight for `weighted_random` (1-100).
    #[serde(default = "one")]
    pub weight: u32,
    /// Skipped until this time (Gregorian seconds; set by Kazoo's ring_group_toggle).
    #[serde(default)]
    pub disable_until: Option<u64>,
}

/// Seconds between 0000-01-01 and the Unix epoch (Kazoo's Gregorian seconds).
const GREGORIAN_OFFSET: u64 = 62_167_219_200;

impl Member {
    /// Whether the member is switched off right now.
    pub fn disabled_now(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            + GREGORIAN_OFFSET;
        self.disable_until.is_some_and(|until| until > now)
    }
}

/// `ring_group` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Members, in order.
    pub endpoints: Vec<Member>,
    /// `simultaneous`, `single` or `weighted_random`.
    #[serde(default = "simultaneous")]
    pub strategy: String,
    /// Overall ring time in seconds.
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// How many times to ring the whole group.
    #[serde(default = "one")]
    pub repeats: u32,
    /// Media (or tone) played while ringing.
    #[serde(default)]
    pub ringback: Option<String>,
    /// Do not follow members' call forwarding.
    #[serde(default = "yes")]
    pub ignore_forward: bool,
}

fn twenty() -> u32 {
    20
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn simultaneous() -> String {
    "simultaneous".into()
}

/// Orders members by a weighted random draw without replacement (higher weight, earlier).
pub fn weighted_order<R: Rng>(members: &[Member], rng: &mut R) -> Vec<Member> {
    let mut pool: Vec<Member> = members.to_vec();
    let mut ordered = Vec::with_capacity(pool.len());
    while !pool.is_empty() {
        let total: u32 = pool.iter().map(|m| m.weight.clamp(1, 100)).sum();
        let mut pick = rng.gen_range(0..total);
        let mut index = 0;
        for (i, member) in pool.iter().enumerate() {
            let weight = member.weight.clamp(1, 100);
            if pick < weight {
                index = i;
                break;
            }
            pick -= weight;
        }
        ordered.push(pool.remove(index));
    }
    ordered
}

fn member_legs(call: &Call, member: &Member, ignore_forward: bool) -> Vec<Leg> {
    let options = EndpointOptions {
        can_call_self: false,
        ignore_forward,
        delay: member.delay,
        timeout: Some(member.timeout).filter(|t| *t > 0),
    };
    match member.endpoint_type.as_str() {
        "user" => bridge::user_legs(call, &member.id, &options),
        "group" => bridge::group_legs(call, &member.id, &options),
        _ => match call
            .ctx
            .store
            .document(&call.account_id, "devices", &member.id)
        {
            Ok(Some(device)) => bridge::device_legs(call, &device, &options),
            _ => {
                tracing::warn!(device = %member.id, "ring_group device not found");
                Vec::new()
            }
        },
    }
}

impl CallflowModule for RingGroup {
    const NAME: &'static str = "ring_group";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Ring several devices, users and groups",
            "required": ["endpoints"],
            "properties": {
                "endpoints": {"type": "array", "minItems": 1, "maxItems": 200, "items": {
                    "type": "object",
                    "required": ["id", "endpoint_type"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                        "endpoint_type": {"type": "string", "enum": ["device", "user", "group"]},
                        "delay": {"type": "integer", "minimum": 0, "maximum": 300, "default": 0},
                        "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                        "weight": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
                        "disable_until": {"type": "integer", "minimum": 0}
                    }
                }},
                "strategy": {"type": "string", "enum": ["simultaneous", "single", "weighted_random"], "default": "simultaneous"},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                "repeats": {"type": "integer", "minimum": 1, "maximum": 20, "default": 1},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048},
                "ignore_forward": {"type": "boolean", "default": true}
            }
        })
    }

    async fn run(data: Data, node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let strategy = Strategy::parse(&data.strategy);
        for _ in 0..data.repeats.max(1) {
            let mut members = if data.strategy == "weighted_random" {
                weighted_order(&data.endpoints, &mut rand::thread_rng())
            } else {
                data.endpoints.clone()
            };
            if strategy == Strategy::Simultaneous {
                members.sort_by_key(|m| m.delay);
            }
            let mut legs: Vec<Leg> = Vec::new();
            for member in members.iter().filter(|m| !m.disabled_now()) {
                for leg in member_legs(call, member, data.ignore_forward) {
                    if !legs.iter().any(|l| l.dial == leg.dial) {
                        legs.push(leg);
                    }
                }
            }
            if legs.is_empty() {
                tracing::info!("ring_group has no member to ring; continuing");
                return Ok(Next::default_child());
            }
            let longest = legs
                .iter()
                .map(|l| l.delay + l.timeout.unwrap_or(data.timeout))
                .max()
                .unwrap_or(data.timeout);
            let timeout = Some(longest.max(data.timeout)).filter(|t| *t > 0);
            match bridge::bridge(call, &legs, strategy, timeout, data.ringback.as_deref()).await? {
                BridgeResult::Answered => return Ok(Next::Stop),
                BridgeResult::Failed { cause, sip_code } => {
                    if bridge::failure_handled(node, &cause, sip_code.as_deref()) {
                        return Ok(bridge::failure_next(&cause, sip_code.as_deref()));
                    }
                    tracing::debug!(%cause, "ring_group attempt failed");
                }
            }
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn member(id: &str, weight: u32) -> Member {
        Member {
            id: id.into(),
            endpoint_type: "device".into(),
            delay: 0,
            timeout: 20,
            weight,
            disable_until: None,
        }
    }

    #[test]
    fn weighted_order_keeps_everyone_and_favours_weight() {
        let members = [member("a", 1), member("b", 100)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut b_first = 0;
        for _ in 0..200 {
            let order = weighted_order(&members, &mut rng);
            assert_eq!(order.len(), 2);
            if order[0].id == "b" {
                b_first += 1;
            }
        }
        assert!(b_first > 150, "b first {b_first}/200");
    }

    use crate::engine::testkit::{apps, branches, node, run_with_store, script, store_for};
    use crate::fakeswitch::BridgeOutcome;
    use crate::modules::bridge::tests::{
        DEV_A, DEV_B, DEV_C, GROUP_A, PREPARE, REALM, USER_A, assert_caller_hung_up,
        assert_hung_up_by_engine, bridges, device, owned_device, play, put,
    };
    use crate::store::memory::MemStore;
    use std::sync::Arc;
    use std::time::Duration;

    fn dev(id: &str, delay: u32, timeout: u32) -> Value {
        json!({"id": id, "endpoint_type": "device", "delay": delay, "timeout": timeout})
    }

    /// Devices 2001 (DEV_A), 2002 (DEV_B), 2003 (DEV_C, owned by USER_A); GROUP_A = {DEV_A}.
    fn store(data: Value, children: Value) -> Arc<MemStore> {
        let store = store_for(node("ring_group", data, children));
        put(&store, "devices", DEV_A, device("2001"));
        put(&store, "devices", DEV_B, device("2002"));
        put(&store, "devices", DEV_C, owned_device("2003", USER_A));
        put(&store, "users", USER_A, json!({"first_name": "Ann"}));
        put(
            &store,
            "groups",
            GROUP_A,
            json!({"endpoints": {DEV_A: {"type": "device"}}}),
        );
        store
    }

    #[tokio::test]
    async fn simultaneous_legs_are_sorted_by_delay() {
        let data = json!({"endpoints": [dev(DEV_A, 10, 20), dev(DEV_B, 0, 15), dev(DEV_C, 5, 20)]});
        let sim = run_with_store(store(data, json!({"_": play("x.wav")})), script()).await;
        assert_eq!(
            apps(&sim),
            [
                PREPARE.to_string(),
                format!(
                    "bridge {{originate_timeout=30,ignore_early_media=true}}[leg_timeout=15]user/2002@{REALM},[leg_timeout=20,leg_delay_start=5]user/2003@{REALM},[leg_timeout=20,leg_delay_start=10]user/2001@{REALM}"
                )
            ]
        );
        assert_eq!(branches(&sim), ["stop"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn single_rings_members_in_order_with_pipes() {
        let data =
            json!({"strategy": "single", "endpoints": [dev(DEV_C, 0, 10), dev(DEV_A, 0, 20)]});
        let sim = run_with_store(store(data, json!({})), script()).await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=20}}[leg_timeout=10]user/2003@{REALM}|[leg_timeout=20]user/2001@{REALM}"
            )]
        );
    }

    #[tokio::test]
    async fn weighted_random_rings_a_permutation_one_by_one() {
        let data = json!({"strategy": "weighted_random", "endpoints": [
            {"id": DEV_A, "endpoint_type": "device", "weight": 10},
            {"id": DEV_B, "endpoint_type": "device", "weight": 50},
            {"id": DEV_C, "endpoint_type": "device", "weight": 90}]});
        let mut expected: Vec<String> = ["2001", "2002", "2003"]
            .iter()
            .map(|n| format!("[leg_timeout=20]user/{n}@{REALM}"))
            .collect();
        expected.sort();
        for _ in 0..3 {
            let sim = run_with_store(store(data.clone(), json!({})), script()).await;
            let dial = bridges(&sim);
            assert_eq!(dial.len(), 1);
            let legs = dial[0]
                .strip_prefix("{originate_timeout=20}")
                .expect("one timeout for every attempt");
            assert!(!legs.contains(','), "{legs}");
            let mut legs: Vec<String> = legs.split('|').map(str::to_string).collect();
            legs.sort();
            assert_eq!(legs, expected);
        }
    }

    #[tokio::test]
    async fn users_groups_and_duplicates_ring_once_without_the_callers_device() {
        // USER_A owns 2003; GROUP_A holds 2001, also listed directly; the caller is 2002.
        let data = json!({"endpoints": [
            dev(DEV_A, 0, 20),
            {"id": USER_A, "endpoint_type": "user"},
            {"id": GROUP_A, "endpoint_type": "group"},
            dev(DEV_B, 0, 20)]});
        let sim = run_with_store(
            store(data, json!({})),
            script().var("sip_auth_username", "2002"),
        )
        .await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=20,ignore_early_media=true}}[leg_timeout=20]user/2001@{REALM},[leg_timeout=20]user/2003@{REALM}"
            )]
        );
    }

    #[tokio::test]
    async fn unhandled_failure_rings_again_then_takes_default() {
        let data = json!({"repeats": 3, "endpoints": [dev(DEV_A, 0, 20)]});
        let sim = run_with_store(
            store(
                data,
                json!({"USER_BUSY": play("busy.wav"), "_": play("default.wav")}),
            ),
            script().bridge("*", BridgeOutcome::failed("NO_ANSWER")),
        )
        .await;
        let one = format!("{{originate_timeout=20}}[leg_timeout=20]user/2001@{REALM}");
        assert_eq!(bridges(&sim), [one.clone(), one.clone(), one]);
        // Prepared once for the whole call.
        assert_eq!(
            apps(&sim)
                .iter()
                .filter(|a| a.starts_with("multiset"))
                .count(),
            1
        );
        assert_eq!(branches(&sim)[0], "_");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback default.wav")
        );
    }

    #[tokio::test]
    async fn handled_failure_does_not_ring_again() {
        let data = json!({"repeats": 3, "endpoints": [dev(DEV_A, 0, 20)]});
        let sim = run_with_store(
            store(
                data,
                json!({"NO_ANSWER": play("noanswer.wav"), "_": play("default.wav")}),
            ),
            script().bridge("*", BridgeOutcome::failed("NO_ANSWER")),
        )
        .await;
        assert_eq!(bridges(&sim).len(), 1);
        assert_eq!(branches(&sim)[0], "NO_ANSWER");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback noanswer.wav")
        );
    }

    #[tokio::test]
    async fn caller_hanging_up_while_it_rings_ends_the_flow_without_repeats() {
        let data = json!({"repeats": 3, "endpoints": [dev(DEV_A, 0, 20)]});
        let sim = run_with_store(
            store(data, json!({"_": play("default.wav")})),
            script()
                .bridge(
                    "*",
                    BridgeOutcome::failed("NO_ANSWER").after(Duration::from_secs(20)),
                )
                .hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert_caller_hung_up(&sim);
        assert_eq!(bridges(&sim).len(), 1);
        assert!(branches(&sim).is_empty());
    }

    #[tokio::test]
    async fn no_member_to_ring_continues() {
        let data = json!({"endpoints": [dev(DEV_A, 0, 20)]});
        let sim = run_with_store(
            store(data, json!({"_": play("default.wav")})),
            script().var("sip_auth_username", "2001"),
        )
        .await;
        assert!(bridges(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn call_forward_is_followed_only_when_asked_and_ringback_is_set() {
        let forwarded_store = |data: Value| {
            let s = store(data, json!({}));
            let mut forwarded = device("2001");
            forwarded["call_forward"] = json!({"enabled": true, "number": "5551234"});
            put(&s, "devices", DEV_A, forwarded);
            s
        };
        let sim = run_with_store(
            forwarded_store(json!({"endpoints": [dev(DEV_A, 0, 20)]})),
            script(),
        )
        .await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=20}}[leg_timeout=20]user/2001@{REALM}"
            )]
        );

        let sim = run_with_store(
            forwarded_store(
                json!({"endpoints": [dev(DEV_A, 0, 20)], "ignore_forward": false,
                                   "ringback": "ringback/us-ring.wav"}),
            ),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim)[1..],
            [
                "set ringback=ringback/us-ring.wav".to_string(),
                format!(
                    "bridge {{originate_timeout=20}}[account_id={},leg_timeout=20]loopback/5551234/default",
                    crate::engine::testkit::ACCOUNT
                )
            ]
        );
    }
}

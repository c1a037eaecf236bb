//! `ring_group`: rings a list of devices, users and groups — all at once, one by one, or one by
//! one in weighted-random order — with per-member delay and timeout, repeated `repeats` times.
//!
//! ESL: see [`super::bridge`]: one `execute bridge <legs>` per repeat; simultaneous legs are
//! sorted by delay and carry `leg_delay_start`/`leg_timeout`; single/weighted_random legs are
//! joined with `|`. The caller's own device is skipped; a device listed twice rings once.
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
                        "weight": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1}
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
            for member in &members {
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
}

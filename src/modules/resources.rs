//! `resources`: places an outbound call through the account's carriers (`resources` documents):
//! the resources whose `rules` match the number, cheapest `weight_cost` first, each enabled
//! gateway in order, failing over from one to the next.
//!
//! Number: `to_did`, else the route's capture group, else the dialled number. A rule's first
//! capture group (e.g. `^\+?1(\d{10})$`) is what is sent to the gateway, wrapped in the gateway's
//! `prefix`/`suffix`. Legs: `[sip_auth_username=U,sip_auth_password=P,sip_h_X-...]
//! sofia/<sip_profile>/<prefix><number><suffix>@<server>` joined with `|`.
//! ESL: see [`super::bridge`] (`execute multiset ...`, optional `execute set ringback=...`,
//! `execute bridge <legs>`). Children: answered -> stop; failure (or no resource:
//! NO_ROUTE_DESTINATION) -> the cause child, then `sip:<code>`, then `_`; with none of those, the
//! call is hung up with the carrier's cause (Kazoo: default response + stop).

use super::bridge::{self, BridgeResult, Leg, Strategy, leg_value};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use crate::store::field_at;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The `resources` module.
pub struct Resources;

/// `resources` (and `offnet`) data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Number to call (default: capture group, then the dialled number).
    #[serde(default)]
    pub to_did: Option<String>,
    /// Ring time in seconds.
    #[serde(default = "sixty")]
    pub timeout: u32,
    /// Media (or tone) played while the carrier connects.
    #[serde(default)]
    pub ringback: Option<String>,
    /// Only resources carrying all these flags.
    #[serde(default)]
    pub outbound_flags: Vec<String>,
    /// Extra SIP headers on the outbound INVITE.
    #[serde(default)]
    pub custom_sip_headers: Map<String, Value>,
    /// Send `X-Account-ID`.
    #[serde(default)]
    pub emit_account_id: bool,
}

fn sixty() -> u32 {
    60
}

/// The schema shared by `resources` and `offnet`.
pub fn data_schema(description: &str) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": {
            "to_did": {"type": "string", "pattern": "^\\+?[0-9*#]{1,32}$"},
            "timeout": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 60},
            "ringback": {"type": "string", "minLength": 1, "maxLength": 2048},
            "outbound_flags": {"type": "array", "items": {"type": "string", "maxLength": 64}, "default": []},
            "custom_sip_headers": {"type": "object", "maxProperties": 20,
                "propertyNames": {"pattern": "^[A-Za-z0-9\\-]{1,64}$"},
                "additionalProperties": {"type": "string", "maxLength": 256}},
            "emit_account_id": {"type": "boolean", "default": false},
            "use_local_resources": {"type": "boolean", "default": true}
        }
    })
}

fn text<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    field_at(doc, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn dial_safe(value: &str) -> String {
    value.replace(
        [',', '|', '[', ']', '{', '}', '\'', '"', ' ', '\r', '\n'],
        "",
    )
}

/// The number a resource's rules accept, rewritten by the first rule that matches (its first
/// capture group, else the whole number). `None`: this resource does not take the number.
pub fn rule_match(resource: &Value, number: &str) -> Option<String> {
    let rules = field_at(resource, "rules").and_then(Value::as_array)?;
    rules.iter().filter_map(Value::as_str).find_map(|rule| {
        let regex = regex::Regex::new(rule).ok()?;
        let caps = regex.captures(number)?;
        Some(
            caps.get(1)
                .or_else(|| caps.get(0))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        )
    })
}

/// Gateway legs for `number` over the given resource documents, cheapest first.
pub fn gateway_legs(
    resources: &[Value],
    number: &str,
    flags: &[String],
    extra_vars: &[(String, String)],
) -> Vec<Leg> {
    let mut usable: Vec<(&Value, String)> = resources
        .iter()
        .filter(|r| field_at(r, "enabled").and_then(Value::as_bool) != Some(false))
        .filter(|r| {
            flags.iter().all(|flag| {
                field_at(r, "flags")
                    .and_then(Value::as_array)
                    .is_some_and(|have| have.iter().any(|f| f.as_str() == Some(flag)))
            })
        })
        .filter_map(|r| rule_match(r, number).map(|n| (r, n)))
        .collect();
    usable.sort_by_key(|(r, _)| {
        (
            field_at(r, "weight_cost")
                .and_then(Value::as_u64)
                .unwrap_or(50),
            text(r, "name").unwrap_or_default().to_string(),
        )
    });
    let mut legs = Vec::new();
    for (resource, dialled) in usable {
        let Some(gateways) = field_at(resource, "gateways").and_then(Value::as_array) else {
            continue;
        };
        for gateway in gateways {
            if field_at(gateway, "enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(server) = text(gateway, "server") else {
                continue;
            };
            let profile = text(gateway, "sip_profile").unwrap_or("external");
            let target = format!(
                "{}{}{}",
                text(gateway, "prefix").unwrap_or_default(),
                dialled,
                text(gateway, "suffix").unwrap_or_default()
            );
            let mut vars: Vec<(String, String)> = extra_vars
                .iter()
                .map(|(k, v)| (k.clone(), leg_value(v)))
                .collect();
            if let (Some(user), Some(password)) =
                (text(gateway, "username"), text(gateway, "password"))
            {
                vars.push(("sip_auth_username".into(), leg_value(user)));
                vars.push(("sip_auth_password".into(), leg_value(password)));
            }
            if let Some(realm) = text(gateway, "realm") {
                vars.push(("sip_auth_realm".into(), leg_value(realm)));
            }
            legs.push(Leg {
                dial: format!(
                    "sofia/{}/{}@{}",
                    dial_safe(profile),
                    dial_safe(&target),
                    dial_safe(server)
                ),
                delay: 0,
                timeout: None,
                vars,
                device_id: None,
            });
        }
    }
    legs
}

/// Runs the outbound call (shared with `offnet`).
pub async fn place(data: Data, node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
    let number = data
        .to_did
        .clone()
        .or_else(|| {
            call.kvs
                .get("capture_group")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| call.destination_number().map(str::to_string))
        .unwrap_or_default();
    let resources = call
        .ctx
        .store
        .documents(&call.account_id, "resources")
        .unwrap_or_else(|error| {
            tracing::error!(%error, "resources lookup failed");
            Vec::new()
        });
    let mut extra = Vec::new();
    if data.emit_account_id {
        extra.push(("sip_h_X-Account-ID".to_string(), call.account_id.clone()));
    }
    for (name, value) in &data.custom_sip_headers {
        if let Some(value) = value.as_str() {
            extra.push((format!("sip_h_{name}"), value.to_string()));
        }
    }
    let legs = gateway_legs(&resources, &number, &data.outbound_flags, &extra);
    let (cause, sip_code) = if legs.is_empty() {
        tracing::info!(%number, "no resource routes this number");
        ("NO_ROUTE_DESTINATION".to_string(), None)
    } else {
        match bridge::bridge(
            call,
            &legs,
            Strategy::Single,
            Some(data.timeout),
            data.ringback.as_deref(),
        )
        .await?
        {
            BridgeResult::Answered => return Ok(Next::Stop),
            BridgeResult::Failed { cause, sip_code } => (cause, sip_code),
        }
    };
    if bridge::failure_handled(node, &cause, sip_code.as_deref()) || node.children.contains_key("_")
    {
        Ok(bridge::failure_next(&cause, sip_code.as_deref()))
    } else {
        Ok(Next::StopWithCause(cause))
    }
}

impl CallflowModule for Resources {
    const NAME: &'static str = "resources";
    type Data = Data;

    fn schema() -> Value {
        data_schema("Call out through the account's carriers")
    }

    async fn run(data: Data, node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        place(data, node, call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_follow_rules_weight_and_flags() {
        let resources = vec![
            json!({"id": "b", "name": "backup", "weight_cost": 80, "rules": ["^\\+?1(\\d{10})$"],
                   "gateways": [{"server": "sip.backup.example", "prefix": "9"}]}),
            json!({"id": "a", "name": "primary", "weight_cost": 10, "rules": ["^\\+?1(\\d{10})$"], "flags": ["fax"],
                   "gateways": [{"server": "sip.primary.example", "username": "u", "password": "p"},
                                {"server": "sip.primary2.example", "enabled": false}]}),
            json!({"id": "c", "name": "intl", "rules": ["^011"], "gateways": [{"server": "x"}]}),
        ];
        let legs = gateway_legs(&resources, "+14155550100", &[], &[]);
        let dials: Vec<&str> = legs.iter().map(|l| l.dial.as_str()).collect();
        assert_eq!(
            dials,
            [
                "sofia/external/4155550100@sip.primary.example",
                "sofia/external/94155550100@sip.backup.example"
            ]
        );
        assert!(
            legs[0]
                .vars
                .contains(&("sip_auth_username".into(), "u".into()))
        );
        let fax_only = gateway_legs(&resources, "+14155550100", &["fax".into()], &[]);
        assert_eq!(fax_only.len(), 1);
        assert!(gateway_legs(&resources, "5000", &[], &[]).is_empty());
    }
}

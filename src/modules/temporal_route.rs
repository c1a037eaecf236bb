//! `temporal_route`: picks a branch by date and time of day — office hours, holidays, "every
//! other Friday" — using Kazoo's `temporal_rules` and `temporal_rules_sets` documents.
//!
//! ESL: none (documents are read from the store; the decision is pure, see
//! [`crate::callflow::temporal`]).
//!
//! Children: keyed by **temporal rule id**, by the id of a rule set listed in `rules` or as a
//! child key, or `rule_set` for the members of `data.rule_set`. Rules are tried in Kazoo's order —
//! `data.rules`, then the child keys (minus `_`), then `data.rule_set`'s members — and the first
//! match wins: `Continue(<key>)`, which falls back to `_` when that child is absent. No match →
//! `_`. Child keys are visited in sorted order (the node keeps children in a sorted map, where
//! Kazoo keeps document order); list the rules in `data.rules` when their order matters.
//!
//! Time zone: `data.timezone`, else the rule's own `timezone` (a callflowd extension), else the
//! account's default. Accounts have no time zone setting in callflowd yet, so that default is UTC
//! (Kazoo falls back to the owner's, the device's, then the account's zone).
//!
//! Clock: the real clock, unless the call's key/value store holds
//! [`temporal::NOW_OVERRIDE_KEY`] (`"temporal_now"`: RFC 3339 or Unix seconds), which tests and
//! `simulate` set to evaluate the flow at a chosen instant.
//!
//! `action`: Kazoo's `menu` | `enable` | `disable` | `reset` are feature codes that prompt the
//! caller and then rewrite the stored rules' `enabled` flag (`menu` collects 1/2/3 for the other
//! three). The engine's store is read-only (DESIGN.md: the engine never writes documents), so
//! validation rejects every `action`; omit it to route by time, which is what Kazoo does when
//! `action` is absent. A stored node that still carries one (imported raw) logs an error and
//! continues to `_`, Kazoo's exit after those actions, without touching any rule.
//! `interdigit_timeout` is accepted for compatibility and only matters to the menu.

use super::{CallflowModule, Next};
use crate::callflow::errors::{FieldErrors, join_path};
use crate::callflow::model::Node;
use crate::callflow::temporal::{
    self, RULE_SET_COLLECTIONS, RULES_COLLECTION, RuleSource, build_routes, first_match, parse_zone,
};
use crate::engine::call::{Call, CallEnded};
use crate::store::StoreRead;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `temporal_route` module.
pub struct TemporalRoute;

/// `temporal_route` data (Kazoo schema `callflows.temporal_route.json`).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct Data {
    /// Rule (or rule-set) ids tried first, in order.
    #[serde(default)]
    pub rules: Vec<String>,
    /// A rule set whose members are tried last; a match continues with child `rule_set`.
    #[serde(default)]
    pub rule_set: Option<String>,
    /// IANA zone the rules are evaluated in (overrides each rule's own).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Kazoo's rule-editing feature codes; rejected by validation (read-only store).
    #[serde(default)]
    pub action: Option<String>,
    /// Milliseconds between menu digits; kept for compatibility, unused without the menu.
    #[serde(default)]
    pub interdigit_timeout: Option<i64>,
}

/// Zone used when neither the route nor the rule names one (no account time zone yet).
pub const ACCOUNT_DEFAULT_ZONE: Tz = Tz::UTC;

/// Reads rules and rule sets of one account from the engine's store.
pub struct StoreRules<'a> {
    /// The store.
    pub store: &'a dyn StoreRead,
    /// Account whose documents are read.
    pub account_id: &'a str,
}

impl StoreRules<'_> {
    fn load(&self, collection: &str, id: &str) -> Option<Value> {
        match self.store.document(self.account_id, collection, id) {
            Ok(doc) => doc,
            Err(error) => {
                tracing::error!(%error, collection, id, "temporal document lookup failed");
                None
            }
        }
    }
}

impl RuleSource for StoreRules<'_> {
    fn rule(&self, id: &str) -> Option<Value> {
        self.load(RULES_COLLECTION, id)
    }

    fn rule_set(&self, id: &str) -> Option<Value> {
        RULE_SET_COLLECTIONS
            .iter()
            .find_map(|collection| self.load(collection, id))
    }
}

/// The route's zone: `data.timezone` when it names a known zone (an unknown one is logged and
/// ignored, so each rule's own zone or the default applies).
pub fn route_zone(data: &Data) -> Option<Tz> {
    let name = data.timezone.as_deref().filter(|z| !z.trim().is_empty())?;
    let zone = parse_zone(name);
    if zone.is_none() {
        tracing::warn!(
            timezone = name,
            "unknown time zone on temporal_route; ignored"
        );
    }
    zone
}

/// Picks the child key for `now` — the whole decision, without I/O: `child_keys` are the node's
/// children, `source` the loaded documents. `None` means continue with `_`.
pub fn choose<'a>(
    data: &Data,
    child_keys: impl IntoIterator<Item = &'a str>,
    source: &dyn RuleSource,
    now: DateTime<Utc>,
) -> Option<String> {
    let routes = build_routes(&data.rules, child_keys, data.rule_set.as_deref(), source);
    first_match(&routes, source, now, route_zone(data), ACCOUNT_DEFAULT_ZONE)
}

impl CallflowModule for TemporalRoute {
    const NAME: &'static str = "temporal_route";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Route by date and time of day using temporal rules; children are keyed by rule id",
            "properties": {
                "rules": {
                    "type": "array",
                    "default": [],
                    "description": "Temporal rule (or rule set) ids, tried in order before the child keys",
                    "items": {"type": "string", "minLength": 1, "maxLength": 128}
                },
                "rule_set": {
                    "type": "string", "minLength": 1, "maxLength": 128,
                    "description": "Temporal rule set whose rules are tried last; a match continues with child `rule_set`"
                },
                "timezone": {
                    "type": "string", "minLength": 1, "maxLength": 64,
                    "description": "IANA time zone used when processing the rules (e.g. America/New_York)"
                },
                "action": {
                    "type": "string",
                    "enum": ["menu", "enable", "disable", "reset"],
                    "description": "Kazoo's rule-editing feature codes; not supported (the engine's store is read-only): omit to route"
                },
                "interdigit_timeout": {
                    "type": "integer", "minimum": 0,
                    "description": "How long, in milliseconds, to wait for the next keypress (menu only)"
                }
            }
        })
    }

    fn validate_extra(data: &Value, path: &str, errors: &mut FieldErrors) {
        if let Some(action) = data.get("action").and_then(Value::as_str) {
            errors.add(
                join_path(path, "action"),
                "enum",
                json!({
                    "message": format!(
                        "action '{action}' edits the stored temporal rules, which callflowd's call engine cannot do (its store is read-only); omit action to route by time"
                    ),
                    "value": action,
                    "target": [],
                }),
            );
        }
        if let Some(zone) = data.get("timezone").and_then(Value::as_str) {
            if parse_zone(zone).is_none() {
                errors.add(
                    join_path(path, "timezone"),
                    "enum",
                    json!({
                        "message": format!("unknown time zone '{zone}' (an IANA name such as America/New_York is expected)"),
                        "value": zone,
                    }),
                );
            }
        }
    }

    async fn run(data: Data, node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        if let Some(action) = &data.action {
            tracing::error!(
                action = %action,
                "temporal_route action needs a writable store; skipping to the default child"
            );
            return Ok(Next::default_child());
        }
        let now = temporal::clock_for(&call.kvs).now();
        let source = StoreRules {
            store: call.ctx.store.as_ref(),
            account_id: &call.account_id,
        };
        let chosen = choose(
            &data,
            node.children.keys().map(String::as_str),
            &source,
            now,
        );
        match chosen {
            Some(key) => {
                tracing::info!(child = %key, "temporal rule matched");
                Ok(Next::Continue(key))
            }
            None => {
                tracing::info!("no temporal rule matched; continuing with the default child");
                Ok(Next::default_child())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callflow::temporal::{GREGORIAN_UNIX_OFFSET, MemRules};
    use crate::modules::get;
    use crate::store::memory::MemStore;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn greg(date: &str) -> i64 {
        utc(&format!("{date}T00:00:00Z")).timestamp() + GREGORIAN_UNIX_OFFSET
    }

    const OFFICE: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    const LUNCH: &str = "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b";
    const HOLIDAYS: &str = "2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c";

    fn docs() -> MemRules {
        let mut src = MemRules::default();
        src.rules.insert(
            OFFICE.into(),
            json!({"name": "Office hours", "cycle": "weekly",
                   "wdays": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                   "time_window_start": 32400, "time_window_stop": 61200, "start_date": greg("2020-01-06")}),
        );
        src.rules.insert(
            LUNCH.into(),
            json!({"name": "Lunch", "cycle": "daily", "time_window_start": 43200, "time_window_stop": 46800,
                   "start_date": greg("2020-01-01")}),
        );
        src.rules.insert(
            "xmas".into(),
            json!({"name": "Christmas", "cycle": "yearly", "month": 12, "days": [25], "start_date": greg("2000-01-01")}),
        );
        src.sets.insert(
            HOLIDAYS.into(),
            json!({"name": "Holidays", "temporal_rules": ["xmas"]}),
        );
        src
    }

    fn data(value: Value) -> Data {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn child_keys_are_rules_and_first_match_wins() {
        let src = docs();
        let d = data(json!({"timezone": "America/New_York"}));
        // the node's children as the engine holds them (a sorted map)
        let children: std::collections::BTreeMap<&str, ()> =
            [(LUNCH, ()), ("_", ()), (OFFICE, ())].into_iter().collect();
        let keys = || children.keys().copied();
        // Wednesday 12:30 EST: lunch and office hours both match; the sorted child keys put OFFICE first
        assert_eq!(
            choose(&d, keys(), &src, utc("2024-01-10T17:30:00Z")),
            Some(OFFICE.into())
        );
        // data.rules come before child keys
        let d = data(json!({"timezone": "America/New_York", "rules": [LUNCH]}));
        assert_eq!(
            choose(&d, keys(), &src, utc("2024-01-10T17:30:00Z")),
            Some(LUNCH.into())
        );
        // Saturday 12:30: only lunch
        assert_eq!(
            choose(&d, keys(), &src, utc("2024-01-13T17:30:00Z")),
            Some(LUNCH.into())
        );
        // Saturday 20:00: nothing -> `_`
        assert_eq!(choose(&d, keys(), &src, utc("2024-01-14T01:00:00Z")), None);
    }

    #[test]
    fn rule_sets_select_the_set_or_rule_set_key() {
        let src = docs();
        let now = utc("2024-12-25T15:00:00Z"); // a Wednesday, 10:00 in New York
        let d = data(json!({"timezone": "America/New_York", "rules": [HOLIDAYS]}));
        assert_eq!(choose(&d, [OFFICE], &src, now), Some(HOLIDAYS.into()));
        let d = data(json!({"timezone": "America/New_York", "rule_set": HOLIDAYS}));
        assert_eq!(choose(&d, [], &src, now), Some("rule_set".into()));
        // office (a child key) is tried before the node's rule_set
        assert_eq!(choose(&d, [OFFICE], &src, now), Some(OFFICE.into()));
    }

    #[test]
    fn zone_comes_from_the_route_then_the_rule_then_utc() {
        let mut src = docs();
        let now = utc("2024-01-10T08:30:00Z"); // Wednesday: 08:30 UTC, 09:30 Berlin, 03:30 New York
        assert_eq!(choose(&data(json!({})), [OFFICE], &src, now), None);
        assert_eq!(
            choose(
                &data(json!({"timezone": "Europe/Berlin"})),
                [OFFICE],
                &src,
                now
            ),
            Some(OFFICE.into())
        );
        // an unknown route zone is ignored (validation rejects it; stored docs may predate that)
        assert_eq!(
            choose(
                &data(json!({"timezone": "Nowhere/Land"})),
                [OFFICE],
                &src,
                now
            ),
            None
        );
        if let Some(doc) = src.rules.get_mut(OFFICE) {
            doc["timezone"] = json!("Europe/Berlin");
        }
        assert_eq!(
            choose(&data(json!({})), [OFFICE], &src, now),
            Some(OFFICE.into())
        );
        assert_eq!(
            choose(
                &data(json!({"timezone": "America/New_York"})),
                [OFFICE],
                &src,
                now
            ),
            None
        );
    }

    #[test]
    fn reads_rules_and_sets_from_the_store() {
        let store = MemStore::new();
        let src = docs();
        for (id, doc) in &src.rules {
            store.put("acct", "temporal_rules", id, doc.clone());
        }
        store.put(
            "acct",
            "temporal_rules_sets",
            HOLIDAYS,
            src.sets[HOLIDAYS].clone(),
        );
        store.put(
            "acct",
            "temporal_rule_sets",
            "alias",
            json!({"temporal_rules": [LUNCH]}),
        );
        let rules = StoreRules {
            store: &store,
            account_id: "acct",
        };
        assert!(rules.rule(OFFICE).is_some());
        assert!(rules.rule_set(HOLIDAYS).is_some());
        assert!(rules.rule_set("alias").is_some());
        assert!(rules.rule("missing").is_none());
        let d = data(json!({"rules": [HOLIDAYS, "alias"]}));
        assert_eq!(
            choose(&d, [], &rules, utc("2024-12-25T12:30:00Z")),
            Some(HOLIDAYS.into())
        );
        assert_eq!(
            choose(&d, [], &rules, utc("2024-12-26T12:30:00Z")),
            Some("alias".into())
        );
        let other = StoreRules {
            store: &store,
            account_id: "other",
        };
        assert_eq!(choose(&d, [], &other, utc("2024-12-25T12:30:00Z")), None);
    }

    #[test]
    fn validation_rejects_actions_and_unknown_zones() {
        let entry = get("temporal_route").unwrap();
        let mut ok = json!({"rules": [OFFICE], "timezone": "Europe/Berlin"});
        let mut errors = FieldErrors::new();
        entry.validate_data(&mut ok, "flow.data", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let mut defaults = json!({});
        entry.validate_data(&mut defaults, "flow.data", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(defaults["rules"], json!([]));

        for action in ["menu", "enable", "disable", "reset"] {
            let mut bad = json!({"action": action});
            let mut errors = FieldErrors::new();
            entry.validate_data(&mut bad, "flow.data", &mut errors);
            assert!(errors.contains("flow.data.action"), "{action}: {errors:?}");
        }
        let mut bad = json!({"timezone": "Mars/Olympus"});
        let mut errors = FieldErrors::new();
        entry.validate_data(&mut bad, "flow.data", &mut errors);
        assert!(errors.contains("flow.data.timezone"));
        let mut bad = json!({"rules": "not a list"});
        let mut errors = FieldErrors::new();
        entry.validate_data(&mut bad, "flow.data", &mut errors);
        assert!(errors.contains("flow.data.rules"));
    }
}

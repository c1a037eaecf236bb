//! The schema-described collections without special rules: groups, menus, temporal rules and
//! rule sets, resources (carriers), conferences and lists. Each is a schema file under
//! `src/api/collection_schemas/`, a few extra checks the schema cannot express, a listing row
//! and the ids it refers to.

use super::schema::{check_regex, check_regex_list, no_extra, pick};
use super::{Collection, generic_unique_error, no_references, no_unique_keys};
use crate::callflow::errors::{FieldErrors, join_path};
use crate::store::StoredDoc;
use serde_json::{Map, Value, json};

schema_module!(groups_schema, "groups.json", no_extra);
schema_module!(menus_schema, "menus.json", menu_checks);
schema_module!(rules_schema, "temporal_rules.json", rule_checks);
schema_module!(rule_sets_schema, "temporal_rules_sets.json", no_extra);
schema_module!(resources_schema, "resources.json", resource_checks);
schema_module!(conferences_schema, "conferences.json", no_extra);
schema_module!(lists_schema, "lists.json", list_checks);

/// Groups (`endpoints`: `{id: {"type": "device"|"user"}}`) rung by the `group` module.
pub static GROUPS: Collection = Collection {
    name: "groups",
    aliases: &[],
    pvt_type: "group",
    singular: "group",
    schema: groups_schema::schema,
    validate: groups_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: group_summary,
    references: group_references,
    private: None,
};

/// Auto-attendant menus read by the `menu` module.
pub static MENUS: Collection = Collection {
    name: "menus",
    aliases: &[],
    pvt_type: "menu",
    singular: "menu",
    schema: menus_schema::schema,
    validate: menus_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: name_summary,
    references: menu_references,
    private: None,
};

/// Time-of-day rules read by `temporal_route`.
pub static TEMPORAL_RULES: Collection = Collection {
    name: "temporal_rules",
    aliases: &[],
    pvt_type: "temporal_rule",
    singular: "temporal_rule",
    schema: rules_schema::schema,
    validate: rules_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: rule_summary,
    references: no_references,
    private: None,
};

/// Sets of temporal rules: Kazoo's path `temporal_rules_sets`, also served as
/// `temporal_rule_sets`; stored as `temporal_rules_sets`, where the engine reads first.
pub static TEMPORAL_RULES_SETS: Collection = Collection {
    name: "temporal_rules_sets",
    aliases: &["temporal_rule_sets"],
    pvt_type: "temporal_rule_set",
    singular: "temporal_rule_set",
    schema: rule_sets_schema::schema,
    validate: rule_sets_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: name_summary,
    references: rule_set_references,
    private: None,
};

/// Carriers for outbound calls (`resources` / `offnet`).
pub static RESOURCES: Collection = Collection {
    name: "resources",
    aliases: &[],
    pvt_type: "resource",
    singular: "resource",
    schema: resources_schema::schema,
    validate: resources_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: resource_summary,
    references: no_references,
    private: None,
};

/// Conference rooms joined by the `conference` module.
pub static CONFERENCES: Collection = Collection {
    name: "conferences",
    aliases: &[],
    pvt_type: "conference",
    singular: "conference",
    schema: conferences_schema::schema,
    validate: conferences_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: conference_summary,
    references: owner_reference,
    private: None,
};

/// Caller-ID lists (`lookupcidname`, `dynamic_cid`).
pub static LISTS: Collection = Collection {
    name: "lists",
    aliases: &[],
    pvt_type: "list",
    singular: "list",
    schema: lists_schema::schema,
    validate: lists_schema::validate,
    unique_keys: no_unique_keys,
    unique_error: generic_unique_error,
    summary: list_summary,
    references: no_references,
    private: None,
};

fn menu_checks(doc: &mut Map<String, Value>, errors: &mut FieldErrors) {
    for key in ["hunt_allow", "hunt_deny"] {
        check_regex(doc.get(key), key, errors);
    }
}

/// The engine's own parser decides (unknown time zone, out-of-range values).
fn rule_checks(doc: &mut Map<String, Value>, errors: &mut FieldErrors) {
    use crate::callflow::temporal::{RuleError, TemporalRule};
    match TemporalRule::from_doc(&Value::Object(doc.clone())) {
        Ok(_) => {}
        Err(RuleError::Field { field, reason }) => {
            errors.add(field, "invalid", json!({"message": reason}))
        }
        Err(other) => errors.add_message("", "invalid", other.to_string()),
    }
}

fn resource_checks(doc: &mut Map<String, Value>, errors: &mut FieldErrors) {
    check_regex_list(doc, "rules", errors);
}

fn list_checks(doc: &mut Map<String, Value>, errors: &mut FieldErrors) {
    if let Some(entries) = doc.get("entries").and_then(Value::as_array) {
        for (index, entry) in entries.iter().enumerate() {
            check_regex(
                entry.get("pattern"),
                &join_path(&format!("entries.{index}"), "pattern"),
                errors,
            );
        }
    }
}

fn name_summary(doc: &StoredDoc) -> Value {
    pick(doc, &["name"])
}

fn group_summary(doc: &StoredDoc) -> Value {
    let mut row = pick(doc, &["name", "music_on_hold"]);
    let count = doc
        .body
        .get("endpoints")
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    if let Some(object) = row.as_object_mut() {
        object.insert("endpoints".into(), json!(count));
    }
    row
}

fn rule_summary(doc: &StoredDoc) -> Value {
    pick(doc, &["name", "cycle", "enabled"])
}

fn resource_summary(doc: &StoredDoc) -> Value {
    pick(doc, &["name", "enabled", "weight_cost", "rules", "flags"])
}

fn conference_summary(doc: &StoredDoc) -> Value {
    pick(doc, &["name", "owner_id", "conference_numbers"])
}

fn list_summary(doc: &StoredDoc) -> Value {
    pick(doc, &["name", "description", "list_type"])
}

fn group_references(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("endpoints")
        .and_then(Value::as_object)
        .map(|e| e.keys().cloned().collect())
        .unwrap_or_default()
}

fn rule_set_references(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("temporal_rules")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn menu_references(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("media")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn owner_reference(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("owner_id")
        .and_then(Value::as_str)
        .map(|id| vec![id.to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: &Collection, v: Value) -> Result<Map<String, Value>, Value> {
        let mut doc = v.as_object().cloned().unwrap();
        (c.validate)(&mut doc).map(|_| doc).map_err(|e| e.to_json())
    }

    #[test]
    fn extra_checks_and_defaults() {
        let doc = check(
            &RESOURCES,
            json!({"name": "carrier", "rules": ["^\\+?1?(\\d{10})$"], "gateways": [{"server": "sip.example.com"}]}),
        )
        .unwrap();
        assert_eq!(doc["gateways"][0]["prefix"], "");
        assert_eq!(doc["weight_cost"], 50);
        let errors = check(
            &RESOURCES,
            json!({"name": "c", "rules": ["(("], "gateways": [{"server": "s"}]}),
        )
        .unwrap_err();
        assert!(errors["rules.0"]["pattern"].is_object(), "{errors}");
        let errors = check(
            &TEMPORAL_RULES,
            json!({"name": "r", "cycle": "weekly", "timezone": "Mars/Base"}),
        )
        .unwrap_err();
        assert!(errors["timezone"]["invalid"].is_object(), "{errors}");
        let errors = check(&MENUS, json!({"name": "m", "hunt_allow": "(["})).unwrap_err();
        assert!(errors["hunt_allow"]["pattern"].is_object(), "{errors}");
        let errors =
            check(&LISTS, json!({"name": "l", "entries": [{"pattern": "(["}]})).unwrap_err();
        assert!(
            errors["entries.0.pattern"]["pattern"].is_object(),
            "{errors}"
        );
        let menu = check(&MENUS, json!({"name": "m"})).unwrap();
        assert_eq!(menu["retries"], 3);
        assert_eq!(menu["media"]["invalid_media"], true);
    }
}

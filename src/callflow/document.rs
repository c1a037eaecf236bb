//! `callflows` as a document collection: what the generic document layer needs to know about
//! it (schema, validation, uniqueness keys, listing summary, referenced ids).

use crate::callflow::errors::FieldErrors;
use crate::callflow::validate;
use crate::documents::{Collection, KeyContext};
use crate::store::{
    Duplicate, KIND_NUMBERS, KIND_PATTERNS, ROUTED_COLLECTION, StoredDoc, UniqueKey,
};
use serde_json::{Map, Value, json};

/// The callflows collection (`/v2/accounts/{id}/callflows`).
pub static CALLFLOWS: Collection = Collection {
    name: ROUTED_COLLECTION,
    aliases: &[],
    pvt_type: "callflow",
    singular: "callflow",
    schema: validate::schema,
    validate: validate::validate_callflow,
    unique_keys,
    unique_error,
    summary,
    references,
    private: None,
};

/// Each number and each pattern is unique per account (exact strings, as Kazoo).
pub fn unique_keys(doc: &Map<String, Value>, _ctx: &KeyContext) -> Vec<UniqueKey> {
    let mut keys = Vec::new();
    for kind in [KIND_NUMBERS, KIND_PATTERNS] {
        if let Some(values) = doc.get(kind).and_then(Value::as_array) {
            keys.extend(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| UniqueKey::new(kind, v)),
            );
        }
    }
    keys
}

/// Kazoo's message: `Number 1000 exists in callflow <id> <name>` under `numbers.unique`.
pub fn unique_error(duplicate: &Duplicate, errors: &mut FieldErrors) {
    let what = if duplicate.key.kind == KIND_PATTERNS {
        "Pattern"
    } else {
        "Number"
    };
    let message = format!(
        "{what} {} exists in callflow {} {}",
        duplicate.key.value,
        duplicate.owner_id,
        duplicate.owner_name.as_deref().unwrap_or_default()
    );
    errors.add(
        duplicate.key.kind.clone(),
        "unique",
        json!({"message": message.trim_end(), "cause": duplicate.key.value}),
    );
}

/// The listing row (Kazoo's `callflows/crossbar_listing` view): no `flow`.
pub fn summary(doc: &StoredDoc) -> Value {
    let body = &doc.body;
    let mut row = Map::new();
    row.insert("id".into(), Value::String(doc.id.clone()));
    for key in ["name", "type", "owner_id", "group_id"] {
        if let Some(v) = body.get(key) {
            row.insert(key.into(), v.clone());
        }
    }
    for key in ["numbers", "patterns"] {
        row.insert(
            key.into(),
            body.get(key).cloned().unwrap_or_else(|| json!([])),
        );
    }
    row.insert(
        "featurecode".into(),
        body.get("featurecode")
            .filter(|f| f.is_object())
            .cloned()
            .unwrap_or(Value::Bool(false)),
    );
    row.insert(
        "modules".into(),
        Value::from(flow_modules(body.get("flow"))),
    );
    row.insert(
        "flags".into(),
        body.get("flags").cloned().unwrap_or_else(|| json!([])),
    );
    Value::Object(row)
}

/// Unique module names of a flow, first seen first, skipping `skip_module` nodes.
pub fn flow_modules(flow: Option<&Value>) -> Vec<String> {
    let mut seen = Vec::new();
    walk(flow, |node| {
        let skipped = node
            .get("data")
            .and_then(|d| d.get("skip_module"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(module) = node.get("module").and_then(Value::as_str) {
            if !skipped && !seen.iter().any(|m| m == module) {
                seen.push(module.to_string());
            }
        }
    });
    seen
}

/// Ids a callflow refers to, for GET's `metadata`: each node's `data.id`, string `data.*_id*`
/// values, `data.endpoints[].id` (ring groups), and child keys of 2+ characters other than `_`
/// (temporal rule ids), as Crossbar does.
pub fn references(doc: &Map<String, Value>) -> Vec<String> {
    let mut ids = Vec::new();
    walk(doc.get("flow"), |node| {
        if let Some(data) = node.get("data").and_then(Value::as_object) {
            for (key, value) in data {
                if key == "id" || key.contains("_id") {
                    if let Some(id) = value.as_str() {
                        ids.push(id.to_string());
                    }
                }
            }
            if let Some(endpoints) = data.get("endpoints").and_then(Value::as_array) {
                ids.extend(
                    endpoints
                        .iter()
                        .filter_map(|e| e.get("id").and_then(Value::as_str))
                        .map(str::to_string),
                );
            }
        }
        if let Some(children) = node.get("children").and_then(Value::as_object) {
            ids.extend(
                children
                    .keys()
                    .filter(|k| k.len() >= 2 && k.as_str() != "_")
                    .cloned(),
            );
        }
    });
    ids.sort();
    ids.dedup();
    ids
}

/// Pre-order walk of a flow tree, iterative (documents are bounded, but stay safe anyway).
fn walk<'a>(root: Option<&'a Value>, mut visit: impl FnMut(&'a Map<String, Value>)) {
    let mut stack: Vec<&Value> = root.into_iter().collect();
    while let Some(node) = stack.pop() {
        let Some(object) = node.as_object() else {
            continue;
        };
        visit(object);
        if let Some(children) = object.get("children").and_then(Value::as_object) {
            stack.extend(children.values().rev());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_shape() {
        let doc = StoredDoc {
            id: "abc".into(),
            body: json!({"name": "n", "numbers": ["1"], "flow": {"module": "answer", "data": {},
                "children": {"_": {"module": "play", "data": {"skip_module": true}},
                             "1": {"module": "hangup", "data": {}}}}})
            .as_object()
            .cloned()
            .unwrap(),
        };
        assert_eq!(
            summary(&doc),
            json!({"id": "abc", "name": "n", "numbers": ["1"], "patterns": [], "featurecode": false,
                   "modules": ["answer", "hangup"], "flags": []})
        );
    }

    #[test]
    fn references_found() {
        let doc = json!({"flow": {"module": "callflow", "data": {"id": "x1"},
            "children": {"_": {"module": "user", "data": {"owner_id": "u1", "timeout": 20}},
                         "rule0001": {"module": "ring_group", "data": {"endpoints": [{"id": "d1"}]}}}}});
        assert_eq!(
            references(doc.as_object().unwrap()),
            vec!["d1", "rule0001", "u1", "x1"]
        );
    }
}

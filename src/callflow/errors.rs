//! Kazoo-shaped per-field validation errors.
//!
//! Crossbar reports a 400 as `{"<dotted.path>":{"<rule>":{"message":..,"target"?,"cause"?,"value"?}}}`;
//! every validator in callflowd (API, `validate` CLI, module schemas) fills this one type so that
//! the shape cannot drift between them.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Errors keyed by dotted field path, then by rule name (`required`, `type`, `unique`, ...).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FieldErrors {
    fields: BTreeMap<String, Map<String, Value>>,
}

impl FieldErrors {
    /// An empty set; `is_empty()` means the document passed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one rule failure; `detail` must be an object holding at least `message`.
    pub fn add(&mut self, path: impl Into<String>, rule: &str, detail: Value) {
        self.fields
            .entry(path.into())
            .or_default()
            .insert(rule.to_string(), detail);
    }

    /// Shorthand for the common `{"message": ...}` detail.
    pub fn add_message(&mut self, path: impl Into<String>, rule: &str, message: impl Into<String>) {
        self.add(path, rule, json!({ "message": message.into() }));
    }

    /// True when no field failed.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Number of failing fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether a given path has any failure (used by tests and by callers that stop early).
    pub fn contains(&self, path: &str) -> bool {
        self.fields.contains_key(path)
    }

    /// Merges another set into this one (later rules for the same path win).
    pub fn extend(&mut self, other: FieldErrors) {
        for (path, rules) in other.fields {
            self.fields.entry(path).or_default().extend(rules);
        }
    }

    /// The `data` object of a Kazoo 400 envelope.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::Object(v.clone())))
                .collect(),
        )
    }
}

/// Joins a dotted path, escaping a literal `.` in a key as `%2E` the way Crossbar does.
pub fn join_path(prefix: &str, key: &str) -> String {
    let key = key.replace('.', "%2E");
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_crossbar() {
        let mut errors = FieldErrors::new();
        errors.add_message(
            "flow.children._.module",
            "required",
            "Field is required but missing",
        );
        assert_eq!(
            errors.to_json(),
            json!({"flow.children._.module":{"required":{"message":"Field is required but missing"}}})
        );
    }

    #[test]
    fn dots_in_keys_are_escaped() {
        assert_eq!(join_path("a", "b.c"), "a.b%2Ec");
        assert_eq!(join_path("", "x"), "x");
    }
}

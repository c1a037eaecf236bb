//! JSON-schema validation shared by the schema-described collections (devices, users, menus...).
//!
//! Each collection's schema is a JSON file under `src/api/collection_schemas/`, embedded at build
//! time. [`CompiledSchema`] serves it (with the `metaflows` definitions filled in, so a
//! `{"$ref": "#/definitions/metaflows"}` resolves) and validates documents with it, in the same
//! Kazoo error shape as callflows:
//!
//! 1. the JSON schema (a `metaflows` property is left to step 2);
//! 2. `metaflows` with [`crate::modules::metaflow::validate_metaflows`] (the engine's own rules);
//! 3. the collection's extra checks (regexes compile, temporal rules parse...);
//! 4. schema defaults written into the document (Kazoo's `use_defaults`), arrays of objects
//!    included (a gateway's `prefix`).

use crate::callflow::errors::{FieldErrors, join_path};
use serde_json::{Map, Value, json};

/// The id pattern of documents callflowd creates (32 lowercase hex characters).
pub const ID_PATTERN: &str = "^[0-9a-f]{32}$";

/// A collection schema: what `GET /v2/schemas/<name>` serves and the compiled validator.
pub struct CompiledSchema {
    /// The served schema (definitions included).
    pub served: Value,
    validator: Result<jsonschema::Validator, String>,
}

impl CompiledSchema {
    /// Parses and compiles an embedded schema. A broken file gives a validator that refuses
    /// every document with a 400 naming the problem (and a unit test catches it first).
    pub fn new(text: &str) -> Self {
        let mut served: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                return CompiledSchema {
                    served: json!({}),
                    validator: Err(format!("schema does not parse: {error}")),
                };
            }
        };
        if text.contains("#/definitions/metaflows") {
            let seed = crate::callflow::validate::schema();
            if let (Some(object), Some(definitions)) =
                (served.as_object_mut(), seed.get("definitions"))
            {
                let mut defs = Map::new();
                for name in ["metaflows", "metaflow"] {
                    if let Some(def) = definitions.get(name) {
                        defs.insert(name.to_string(), def.clone());
                    }
                }
                object.insert("definitions".into(), Value::Object(defs));
            }
        }
        // The validator leaves `metaflows` to validate_metaflows (one rule set, one error shape).
        let mut checked = served.clone();
        if let Some(props) = checked.get_mut("properties").and_then(Value::as_object_mut) {
            if props.contains_key("metaflows") {
                props.insert("metaflows".into(), json!({}));
            }
        }
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .build(&checked)
            .map_err(|e| e.to_string());
        CompiledSchema { served, validator }
    }

    /// Whether the schema compiled.
    pub fn is_usable(&self) -> bool {
        self.validator.is_ok()
    }

    /// Validates public fields in place: schema, `metaflows`, `extra`, then defaults.
    pub fn validate(
        &self,
        doc: &mut Map<String, Value>,
        extra: fn(&mut Map<String, Value>, &mut FieldErrors),
    ) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        let instance = Value::Object(std::mem::take(doc));
        match &self.validator {
            Ok(validator) => {
                for error in validator.iter_errors(&instance) {
                    crate::modules::push_schema_error(&error, "", &mut errors);
                }
            }
            Err(message) => {
                errors.add_message("", "error", format!("schema unavailable: {message}"))
            }
        }
        let Value::Object(restored) = instance else {
            return Err(errors);
        };
        *doc = restored;
        if let Some(metaflows) = doc.get_mut("metaflows") {
            crate::modules::metaflow::validate_metaflows(metaflows, "metaflows", &mut errors);
        }
        if errors.is_empty() {
            extra(doc, &mut errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut value = Value::Object(std::mem::take(doc));
        apply_defaults(&self.served, &mut value);
        if let Value::Object(object) = value {
            *doc = object;
        }
        Ok(())
    }
}

/// No extra checks.
pub fn no_extra(_doc: &mut Map<String, Value>, _errors: &mut FieldErrors) {}

/// Writes `default`s of `schema` into missing keys of `value`, recursing into object properties
/// and into the items of arrays of objects. Recursion follows the schema (a few levels), never
/// the document.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(object) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, prop) in props {
                match object.get_mut(key) {
                    Some(existing) => apply_defaults(prop, existing),
                    None => {
                        if let Some(default) = prop.get("default") {
                            let mut value = default.clone();
                            apply_defaults(prop, &mut value);
                            object.insert(key.clone(), value);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Checks that the regex at `path` (a string field) compiles with the engine's regex crate.
pub fn check_regex(value: Option<&Value>, path: &str, errors: &mut FieldErrors) {
    let Some(pattern) = value.and_then(Value::as_str) else {
        return;
    };
    if let Err(error) = crate::callflow::validate::compile_pattern(pattern) {
        let reason = error
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string();
        errors.add(
            path,
            "pattern",
            json!({"message": format!("Invalid regular expression: {reason}"), "value": pattern}),
        );
    }
}

/// Checks each string of the array at `key` compiles as a regex (`key.<index>` errors).
pub fn check_regex_list(doc: &Map<String, Value>, key: &str, errors: &mut FieldErrors) {
    if let Some(items) = doc.get(key).and_then(Value::as_array) {
        for (index, item) in items.iter().enumerate() {
            check_regex(Some(item), &join_path(key, &index.to_string()), errors);
        }
    }
}

/// A listing row: `id` plus the listed keys (dotted paths; the row key is the last segment
/// unless renamed with `row=path`).
pub fn pick(doc: &crate::store::StoredDoc, keys: &[&str]) -> Value {
    let mut row = Map::new();
    row.insert("id".into(), Value::String(doc.id.clone()));
    let body = Value::Object(crate::store::public_fields(&doc.body));
    for spec in keys {
        let (name, path) = spec.split_once('=').unwrap_or((spec, spec));
        if let Some(v) = crate::store::field_at(&body, path) {
            row.insert(name.to_string(), v.clone());
        }
    }
    Value::Object(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_reach_array_items() {
        let schema = json!({"properties": {"gateways": {"type": "array", "items": {
            "properties": {"prefix": {"default": ""}}}}, "enabled": {"default": true}}});
        let mut doc = json!({"gateways": [{"server": "a"}, {"server": "b", "prefix": "9"}]});
        apply_defaults(&schema, &mut doc);
        assert_eq!(
            doc,
            json!({"gateways": [{"server": "a", "prefix": ""}, {"server": "b", "prefix": "9"}], "enabled": true})
        );
    }

    #[test]
    fn metaflows_are_checked_by_the_metaflow_rules() {
        let schema = CompiledSchema::new(
            r##"{"type": "object", "properties": {"name": {"type": "string"}, "metaflows": {"$ref": "#/definitions/metaflows"}}}"##,
        );
        assert!(schema.is_usable());
        assert!(schema.served["definitions"]["metaflows"].is_object());
        let mut doc = json!({"name": "x", "metaflows": {"binding_digit": "x"}})
            .as_object()
            .cloned()
            .unwrap();
        let errors = schema.validate(&mut doc, no_extra).unwrap_err().to_json();
        assert!(
            errors["metaflows.binding_digit"]["enum"].is_object(),
            "{errors}"
        );
    }
}

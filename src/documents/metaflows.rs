//! The account's metaflows (Kazoo's `/v2/accounts/{id}/metaflows`): one document per account,
//! stored in collection `metaflows` under the account's own id, whose public fields *are* the
//! metaflows object (`binding_digit`, `digit_timeout`, `listen_on`, `numbers`, `patterns`). The
//! engine reads it as `document(account, "metaflows", account_id)`.
//!
//! It is not one of the listed [`super::collections`]: it has its own GET/POST/DELETE routes
//! (`api/metaflows.rs`) but the same validation, revision and storage machinery.

use super::Collection;
use super::schema::pick;
use crate::callflow::errors::FieldErrors;
use crate::store::StoredDoc;
use serde_json::{Map, Value, json};

/// Store collection of the account metaflows document.
pub const METAFLOWS_COLLECTION: &str = "metaflows";

/// The account metaflows "collection" (one document per account, id = account id).
pub static METAFLOWS: Collection = Collection {
    name: METAFLOWS_COLLECTION,
    aliases: &[],
    pvt_type: "metaflows",
    singular: "metaflows",
    schema,
    validate,
    unique_keys: super::no_unique_keys,
    unique_error: super::generic_unique_error,
    summary,
    references: super::no_references,
    private: None,
};

/// Kazoo's `metaflows` schema (the callflow schema's definition, with its node definition).
pub fn schema() -> Value {
    let seed = crate::callflow::validate::schema();
    let mut out = seed["definitions"]["metaflows"].clone();
    if let Some(object) = out.as_object_mut() {
        object.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        object.insert("title".into(), json!("metaflows"));
        object.insert(
            "definitions".into(),
            json!({"metaflow": seed["definitions"]["metaflow"].clone()}),
        );
    }
    out
}

/// Validates with the engine's metaflow rules (`crate::modules::metaflow::validate_metaflows`);
/// `binding_digit` defaults to `*`.
pub fn validate(doc: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut value = Value::Object(std::mem::take(doc));
    crate::modules::metaflow::validate_metaflows(&mut value, "", &mut errors);
    if let Value::Object(object) = value {
        *doc = object;
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    doc.entry("binding_digit")
        .or_insert_with(|| Value::String("*".into()));
    Ok(())
}

fn summary(doc: &StoredDoc) -> Value {
    pick(doc, &["binding_digit", "listen_on"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_defaults() {
        let mut doc = json!({"numbers": {"2": {"module": "hangup"}}})
            .as_object()
            .cloned()
            .unwrap();
        validate(&mut doc).unwrap();
        assert_eq!(doc["binding_digit"], "*");
        let mut bad = json!({"binding_digit": "x", "numbers": {"ab": {"module": "nope"}}})
            .as_object()
            .cloned()
            .unwrap();
        let errors = validate(&mut bad).unwrap_err().to_json();
        assert!(errors["binding_digit"]["enum"].is_object(), "{errors}");
        assert!(errors["numbers.ab"]["pattern"].is_object(), "{errors}");
        assert!(jsonschema::options().build(&schema()).is_ok());
    }
}

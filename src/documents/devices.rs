//! `devices`: SIP phones and softphones (and call-forwarded cell phones).
//!
//! A device's `sip.username` is unique per realm **across all accounts** (a global unique key
//! `username@realm`, lowercased), because FreeSWITCH's directory must find exactly one device
//! for a registration: the realm is the device's `sip.realm`, else its account's realm.
//! [`sip_owner`] is that lookup. `sip.password` is stored and returned as Kazoo does (clients
//! edit it); the directory endpoint only ever sends its `a1-hash`.

use super::schema::{no_extra, pick};
use super::{Collection, KeyContext};
use crate::callflow::errors::FieldErrors;
use crate::store::{Duplicate, Store, StoreError, StoredDoc, UniqueKey, field_at};
use serde_json::{Map, Value, json};

schema_module!(devices_schema, "devices.json", no_extra);

/// Unique-key kind (and error path) of SIP credentials.
pub const KIND_SIP_USERNAME: &str = "sip.username";

/// The devices collection (`/v2/accounts/{id}/devices`).
pub static DEVICES: Collection = Collection {
    name: "devices",
    aliases: &[],
    pvt_type: "device",
    singular: "device",
    schema: devices_schema::schema,
    validate: devices_schema::validate,
    unique_keys,
    unique_error,
    summary,
    references,
    private: None,
};

fn text<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    field_at(doc, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The realm a device registers in: its `sip.realm`, else the account's.
pub fn effective_realm(device: &Value, account_realm: Option<&str>) -> Option<String> {
    text(device, "sip.realm")
        .or(account_realm.filter(|r| !r.is_empty()))
        .map(str::to_string)
}

/// The global key of SIP credentials `username@realm` (lowercased).
pub fn sip_key(username: &str, realm: &str) -> UniqueKey {
    UniqueKey::global(
        KIND_SIP_USERNAME,
        &format!("{}@{}", username.to_lowercase(), realm.to_lowercase()),
    )
}

/// `sip.username` is unique per realm (globally); without any realm, per account.
pub fn unique_keys(doc: &Map<String, Value>, ctx: &KeyContext) -> Vec<UniqueKey> {
    let device = Value::Object(doc.clone());
    let Some(username) = text(&device, "sip.username") else {
        return Vec::new();
    };
    match effective_realm(&device, ctx.account_realm.as_deref()) {
        Some(realm) => vec![sip_key(username, &realm)],
        None => vec![UniqueKey::new(KIND_SIP_USERNAME, &username.to_lowercase())],
    }
}

/// Kazoo's `{"sip.username":{"unique":{"message":"SIP credentials already in use",...}}}`.
fn unique_error(duplicate: &Duplicate, errors: &mut FieldErrors) {
    let username = duplicate
        .key
        .value
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut detail = json!({"message": "SIP credentials already in use", "cause": username});
    if !duplicate.other_account && !duplicate.owner_id.is_empty() {
        if let Some(object) = detail.as_object_mut() {
            object.insert("value".into(), Value::String(duplicate.owner_id.clone()));
        }
    }
    errors.add(KIND_SIP_USERNAME, "unique", detail);
}

fn summary(doc: &StoredDoc) -> Value {
    pick(
        doc,
        &[
            "name",
            "username=sip.username",
            "owner_id",
            "enabled",
            "device_type",
            "mac_address",
        ],
    )
}

fn references(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("owner_id")
        .and_then(Value::as_str)
        .map(|id| vec![id.to_string()])
        .unwrap_or_default()
}

/// The live device whose SIP credentials are `username` in `realm`: `(account_id, device)`
/// (public fields + `id`), whichever account holds it.
pub fn sip_owner(
    store: &dyn Store,
    username: &str,
    realm: &str,
) -> Result<Option<(String, Value)>, StoreError> {
    let Some((account_id, id)) = store.global_key_owner(DEVICES.name, &sip_key(username, realm))?
    else {
        return Ok(None);
    };
    Ok(store
        .get_doc(&account_id, DEVICES.name, &id)?
        .map(|doc| (account_id, Value::Object(doc.public()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_effective_realm() {
        let ctx = KeyContext {
            account_realm: Some("Acme.Example".into()),
        };
        let doc = json!({"sip": {"username": "Alice"}});
        assert_eq!(
            unique_keys(doc.as_object().unwrap(), &ctx),
            vec![UniqueKey::global(KIND_SIP_USERNAME, "alice@acme.example")]
        );
        let doc = json!({"sip": {"username": "bob", "realm": "other.example"}});
        assert_eq!(
            unique_keys(doc.as_object().unwrap(), &ctx)[0].value,
            "bob@other.example"
        );
        let doc = json!({"sip": {"username": "carol"}});
        assert!(!unique_keys(doc.as_object().unwrap(), &KeyContext::default())[0].global);
        assert!(unique_keys(json!({"name": "x"}).as_object().unwrap(), &ctx).is_empty());
    }
}

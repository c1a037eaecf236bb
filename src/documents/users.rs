//! `users`: people. A user owns devices, may carry metaflows, and may log in with
//! `PUT /v2/user_auth` when it has a `username` and a `password`.
//!
//! The password is **write-only**: it is taken out of the request before anything is stored,
//! turned into the same salted argon2 digests `callflowd account create --username` stores
//! ([`UserCredential`], of `md5("username:password")` and its sha1), kept in the private
//! [`LOGIN_FIELD`], and never returned. Usernames are unique per account (case-insensitive).
//! Renaming a user that can log in needs the password again (the digests bind the username),
//! as in Kazoo; removing the username removes the login.

use super::schema::{no_extra, pick};
use super::{Collection, KeyContext, PrivateFields};
use crate::auth::secrets::UserCredential;
use crate::callflow::errors::FieldErrors;
use crate::store::{Duplicate, LOGIN_FIELD, StoredDoc, USERS_COLLECTION, UniqueKey};
use serde_json::{Map, Value, json};

schema_module!(users_schema, "users.json", no_extra);

/// Unique-key kind (and error path) of login names.
pub const KIND_USERNAME: &str = "username";

/// Longest password accepted.
const MAX_PASSWORD: usize = 256;

/// The users collection (`/v2/accounts/{id}/users`).
pub static USERS: Collection = Collection {
    name: USERS_COLLECTION,
    aliases: &[],
    pvt_type: "user",
    singular: "user",
    schema: users_schema::schema,
    validate: users_schema::validate,
    unique_keys,
    unique_error,
    summary,
    references: super::no_references,
    private: Some(&LOGIN),
};

static LOGIN: PrivateFields = PrivateFields {
    keep: &[],
    extract,
    finish,
    on_delete: None,
};

fn username(fields: &Map<String, Value>) -> Option<String> {
    fields
        .get(KIND_USERNAME)
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_lowercase)
}

fn unique_keys(doc: &Map<String, Value>, _ctx: &KeyContext) -> Vec<UniqueKey> {
    username(doc)
        .map(|u| vec![UniqueKey::new(KIND_USERNAME, &u)])
        .unwrap_or_default()
}

fn unique_error(duplicate: &Duplicate, errors: &mut FieldErrors) {
    errors.add(
        KIND_USERNAME,
        "unique",
        json!({"message": "Username must be unique for the account", "cause": duplicate.key.value}),
    );
}

fn summary(doc: &StoredDoc) -> Value {
    pick(
        doc,
        &[
            "first_name",
            "last_name",
            "username",
            "email",
            "priv_level",
            "presence_id",
            "enabled",
        ],
    )
}

/// Takes `password` out of the request; with one, computes the login for the username the
/// document will have (the request's, else the stored one for a PATCH).
fn extract(
    fields: &mut Map<String, Value>,
    patch_base: Option<&Map<String, Value>>,
    id: &str,
) -> Result<Map<String, Value>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let password = match fields.remove("password") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::String(p)) if !p.is_empty() && p.len() <= MAX_PASSWORD => p,
        Some(Value::String(_)) => {
            errors.add_message(
                "password",
                "maxLength",
                format!("Value must be 1 to {MAX_PASSWORD} characters"),
            );
            return Err(errors);
        }
        Some(other) => {
            errors.add(
                "password",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": other}),
            );
            return Err(errors);
        }
    };
    let name = match fields.get(KIND_USERNAME) {
        Some(_) => username(fields),
        None => patch_base.and_then(username),
    };
    let Some(name) = name else {
        errors.add_message(
            KIND_USERNAME,
            "required",
            "A username is required to set a password",
        );
        return Err(errors);
    };
    let credential = UserCredential::new(id, &name, &password).map_err(|e| {
        let mut errors = FieldErrors::new();
        errors.add_message("password", "error", e.to_string());
        errors
    })?;
    let mut pending = Map::new();
    match serde_json::to_value(credential) {
        Ok(login) => {
            pending.insert(LOGIN_FIELD.into(), login);
            Ok(pending)
        }
        Err(e) => {
            errors.add_message("password", "error", e.to_string());
            Err(errors)
        }
    }
}

fn login_username(login: &Value) -> Option<&str> {
    login.get("username").and_then(Value::as_str)
}

/// Decides the stored login: the new one (if it was hashed for the final username), the current
/// one (if the username did not change), or none.
fn finish(
    pending: Map<String, Value>,
    public: &Map<String, Value>,
    current: Option<&StoredDoc>,
) -> Result<Map<String, Value>, FieldErrors> {
    let name = username(public);
    let mut out = Map::new();
    let renamed_without_password = || {
        let mut errors = FieldErrors::new();
        errors.add_message(
            "password",
            "required",
            "The password must be provided when updating the username",
        );
        errors
    };
    if let Some(login) = pending.get(LOGIN_FIELD) {
        if login_username(login) != name.as_deref() {
            return Err(renamed_without_password());
        }
        out.insert(LOGIN_FIELD.into(), login.clone());
        return Ok(out);
    }
    let existing = current.and_then(|d| d.body.get(LOGIN_FIELD));
    match (existing, name) {
        (Some(login), Some(name)) if login_username(login) == Some(name.as_str()) => {
            out.insert(LOGIN_FIELD.into(), login.clone());
        }
        (Some(_), Some(_)) => return Err(renamed_without_password()),
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::secrets::{DigestMethod, md5_credentials};

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn password_becomes_a_login_and_leaves_the_document() {
        let mut fields = map(json!({"first_name": "A", "username": "Alice", "password": "s3cret"}));
        let pending = extract(&mut fields, None, "u1").unwrap();
        assert!(fields.get("password").is_none());
        let login: UserCredential = serde_json::from_value(pending[LOGIN_FIELD].clone()).unwrap();
        assert!(login.verify(DigestMethod::Md5, &md5_credentials("alice", "s3cret")));
        let stored = finish(pending, &fields, None).unwrap();
        assert!(stored.contains_key(LOGIN_FIELD));
    }

    #[test]
    fn rename_needs_the_password_and_patch_uses_the_stored_username() {
        let mut fields = map(json!({"username": "alice", "password": "pw"}));
        let pending = extract(&mut fields, None, "u1").unwrap();
        let body = map(json!({"username": "alice", LOGIN_FIELD: pending[LOGIN_FIELD].clone()}));
        let current = StoredDoc {
            id: "u1".into(),
            body,
        };
        // Unchanged username: the login stays.
        let kept = finish(
            Map::new(),
            &map(json!({"username": "Alice"})),
            Some(&current),
        )
        .unwrap();
        assert!(kept.contains_key(LOGIN_FIELD));
        // Renamed without a password: refused.
        let err = finish(Map::new(), &map(json!({"username": "bob"})), Some(&current)).unwrap_err();
        assert!(err.to_json()["password"]["required"].is_object());
        // Username removed: the login goes.
        assert!(
            finish(Map::new(), &Map::new(), Some(&current))
                .unwrap()
                .is_empty()
        );
        // PATCH with only a password: hashed with the stored username.
        let mut changes = map(json!({"password": "new"}));
        let base = map(json!({"username": "alice"}));
        let pending = extract(&mut changes, Some(&base), "u1").unwrap();
        assert_eq!(pending[LOGIN_FIELD]["username"], "alice");
        // A password without any username is refused.
        let mut fields = map(json!({"password": "pw"}));
        assert!(
            extract(&mut fields, None, "u1").unwrap_err().to_json()["username"]["required"]
                .is_object()
        );
        let mut fields = map(json!({"username": "a", "password": 5}));
        assert!(
            extract(&mut fields, None, "u1").unwrap_err().to_json()["password"]["type"].is_object()
        );
    }
}

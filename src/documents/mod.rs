//! The generic document layer: one set of rules for every Crossbar collection.
//!
//! A collection is a [`Collection`] descriptor (name, `pvt_type`, schema, validator, uniqueness
//! keys, listing summary, referenced ids). Everything else — private-field stripping, create /
//! replace / patch / delete with revisions, uniqueness errors, `metadata`, listing with filters
//! and pagination — is written once here and used by the API handlers, `callflowd import` and
//! `callflowd export`. Adding a collection (devices, users, menus...) = one descriptor + one line
//! in [`collections`] + one routes file in `api/`.

/// Declares the schema plumbing of a schema-described collection: a module `$m` with the compiled
/// schema (`SCHEMA`, from a file under `src/api/collection_schemas/`), `schema()` and
/// `validate()` (schema, metaflows, the `$extra` checks, defaults).
macro_rules! schema_module {
    ($m:ident, $file:expr, $extra:ident) => {
        mod $m {
            use serde_json::{Map, Value};
            use std::sync::LazyLock;

            pub(super) static SCHEMA: LazyLock<$crate::documents::schema::CompiledSchema> =
                LazyLock::new(|| {
                    $crate::documents::schema::CompiledSchema::new(include_str!(concat!(
                        "../api/collection_schemas/",
                        $file
                    )))
                });

            pub(super) fn schema() -> Value {
                SCHEMA.served.clone()
            }

            pub(super) fn validate(
                doc: &mut Map<String, Value>,
            ) -> Result<(), $crate::callflow::errors::FieldErrors> {
                SCHEMA.validate(doc, super::$extra)
            }
        }
    };
}

pub mod devices;
pub mod listing;
pub mod media;
pub mod metaflows;
pub mod others;
pub mod schema;
pub mod users;

use crate::callflow::document::CALLFLOWS;
use crate::callflow::errors::FieldErrors;
use crate::callflow::merge::deep_merge;
use crate::store::{
    DocWrite, Duplicate, Prepared, Store, StoreError, StoredDoc, UniqueKey, WriteError, WriteOp,
    is_private_key,
};
use serde_json::{Map, Value, json};

pub use listing::{ListParams, ListResult};

/// What the generic layer needs to know about one collection.
pub struct Collection {
    /// URL segment and store collection (`callflows`).
    pub name: &'static str,
    /// Other URL segments serving the same collection (`temporal_rule_sets` for
    /// `temporal_rules_sets`).
    pub aliases: &'static [&'static str],
    /// Kazoo's `pvt_type` (`callflow`); also the `metadata` entries' `pvt_type`.
    pub pvt_type: &'static str,
    /// Singular noun for documentation (`callflow`).
    pub singular: &'static str,
    /// The JSON schema (served by `/v2/schemas/<name>`, embedded in the OpenAPI document).
    pub schema: fn() -> Value,
    /// Validates public fields in place (writing schema defaults); `Err` is the 400 `data`.
    pub validate: fn(&mut Map<String, Value>) -> Result<(), FieldErrors>,
    /// Exact-string keys that must be unique (validated documents only).
    pub unique_keys: fn(&Map<String, Value>, &KeyContext) -> Vec<UniqueKey>,
    /// Adds the 400 error for a uniqueness collision.
    pub unique_error: fn(&Duplicate, &mut FieldErrors),
    /// The listing row of a document.
    pub summary: fn(&StoredDoc) -> Value,
    /// Ids the document refers to (for GET's `metadata`).
    pub references: fn(&Map<String, Value>) -> Vec<String>,
    /// Write-only fields and server-managed private fields, if the collection has any.
    pub private: Option<&'static PrivateFields>,
}

/// Facts about the account that uniqueness keys may depend on.
#[derive(Debug, Clone, Default)]
pub struct KeyContext {
    /// The account's SIP realm (a device without `sip.realm` registers in it).
    pub account_realm: Option<String>,
}

/// How a collection keeps fields clients must not read back (a user's password, as salted
/// hashes) and fields only the server sets (a media file's upload facts): stored as `pvt_*`
/// keys, never returned, never taken from a request.
pub struct PrivateFields {
    /// Private keys of the current document carried over by every write.
    pub keep: &'static [&'static str],
    /// Runs before the write, outside the account lock and on the blocking pool (it may hash
    /// passwords): takes write-only fields out of the request's public fields and returns
    /// pending private state. Arguments: the request's fields, the current public fields for a
    /// PATCH (the request is then only the changes), the document id.
    pub extract: ExtractFn,
    /// Runs under the lock after validation: the private fields to store, from the pending state,
    /// the validated public fields and the current document. A `null` value removes a key.
    pub finish: FinishFn,
    /// Runs after a DELETE with the data directory, account id and document id: removes files
    /// the document owned (a media file).
    pub on_delete: Option<fn(&std::path::Path, &str, &str)>,
}

/// [`PrivateFields::extract`]: (request fields, PATCH base, id) -> pending private state.
pub type ExtractFn = fn(
    &mut Map<String, Value>,
    Option<&Map<String, Value>>,
    &str,
) -> Result<Map<String, Value>, FieldErrors>;

/// [`PrivateFields::finish`]: (pending, validated public fields, current doc) -> private fields.
pub type FinishFn = fn(
    Map<String, Value>,
    &Map<String, Value>,
    Option<&StoredDoc>,
) -> Result<Map<String, Value>, FieldErrors>;

/// No uniqueness keys.
pub fn no_unique_keys(_doc: &Map<String, Value>, _ctx: &KeyContext) -> Vec<UniqueKey> {
    Vec::new()
}

/// Generic uniqueness error: `{"<kind>":{"unique":{"message","cause"}}}`.
pub fn generic_unique_error(duplicate: &Duplicate, errors: &mut FieldErrors) {
    errors.add(
        duplicate.key.kind.clone(),
        "unique",
        json!({"message": format!("{} is already in use", duplicate.key.kind), "cause": duplicate.key.value}),
    );
}

/// No references.
pub fn no_references(_doc: &Map<String, Value>) -> Vec<String> {
    Vec::new()
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

/// Every collection served under `/v2/accounts/{account_id}/<name>`.
pub fn collections() -> &'static [&'static Collection] {
    static ALL: [&Collection; 11] = [
        &CALLFLOWS,
        &devices::DEVICES,
        &users::USERS,
        &others::GROUPS,
        &others::MENUS,
        &others::TEMPORAL_RULES,
        &others::TEMPORAL_RULES_SETS,
        &others::RESOURCES,
        &others::CONFERENCES,
        &media::MEDIA,
        &others::LISTS,
    ];
    &ALL
}

/// A collection by URL name (aliases included).
pub fn collection(name: &str) -> Option<&'static Collection> {
    collections()
        .iter()
        .copied()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// Why a document operation failed; the API maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Unknown or deleted id (404 `bad_identifier`).
    #[error("bad identifier {0}")]
    NotFound(String),
    /// Validation or uniqueness failure (400, Kazoo-shaped `data`).
    #[error("validation error")]
    Invalid(FieldErrors),
    /// Stale `If-Match` (409).
    #[error("revision conflict: {0}")]
    Conflict(String),
    /// Create with an id that exists (409; only imports choose ids).
    #[error("document {0} already exists")]
    Exists(String),
    /// Storage failure (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Per-request facts recorded with a write.
#[derive(Debug, Clone, Copy)]
pub struct WriteContext<'a> {
    /// Stored as `pvt_request_id`.
    pub request_id: &'a str,
    /// Optional `If-Match` revision.
    pub if_match: Option<&'a str>,
}

/// Turns a request's `data` into public fields: must be an object; `_*`, `pvt_*`, `id` and the
/// computed `metadata` are dropped (clients echo GET replies back in POSTs).
pub fn client_fields(data: Value) -> Result<Map<String, Value>, FieldErrors> {
    match data {
        Value::Object(mut map) => {
            map.retain(|k, _| !is_private_key(k) && k != "id" && k != "metadata");
            Ok(map)
        }
        other => {
            let mut errors = FieldErrors::new();
            errors.add(
                "data",
                "type",
                json!({"message": "Value did not match type(s): object", "target": "object", "value": other}),
            );
            Err(errors)
        }
    }
}

/// Everything a write computes before taking the account lock.
struct Pending {
    public: Map<String, Value>,
    private: Map<String, Value>,
    keys: KeyContext,
}

fn prepare(
    collection: &Collection,
    pending: Pending,
    current: Option<&StoredDoc>,
) -> Result<Prepared, WriteError> {
    let Pending {
        mut public,
        private: pending_private,
        keys,
    } = pending;
    (collection.validate)(&mut public).map_err(WriteError::Invalid)?;
    let unique = (collection.unique_keys)(&public, &keys);
    let mut private = Map::new();
    if let Some(hooks) = collection.private {
        if let Some(current) = current {
            for key in hooks.keep {
                if let Some(value) = current.body.get(*key) {
                    private.insert((*key).to_string(), value.clone());
                }
            }
        }
        let extra =
            (hooks.finish)(pending_private, &public, current).map_err(WriteError::Invalid)?;
        private.extend(extra);
        private.retain(|_, v| !v.is_null());
    }
    Ok(Prepared {
        public,
        unique,
        private,
    })
}

/// Reads what uniqueness keys depend on and runs the collection's `extract` hook (on the
/// blocking pool: it may hash passwords).
async fn pending(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    mut public: Map<String, Value>,
    patch_base: Option<Map<String, Value>>,
) -> Result<Pending, DocError> {
    let keys = KeyContext {
        account_realm: store.account(account_id)?.and_then(|a| a.realm),
    };
    let Some(hooks) = collection.private else {
        return Ok(Pending {
            public,
            private: Map::new(),
            keys,
        });
    };
    let id = id.to_string();
    let extract = hooks.extract;
    let (public, private) = tokio::task::spawn_blocking(move || {
        extract(&mut public, patch_base.as_ref(), &id).map(|private| (public, private))
    })
    .await
    .map_err(|e| DocError::Store(StoreError::Backend(format!("extract task failed: {e}"))))?
    .map_err(DocError::Invalid)?;
    Ok(Pending {
        public,
        private,
        keys,
    })
}

fn map_write_error(collection: &Collection, id: &str, error: WriteError) -> DocError {
    match error {
        WriteError::NotFound => DocError::NotFound(id.to_string()),
        WriteError::Exists => DocError::Exists(id.to_string()),
        WriteError::StaleRevision { expected, current } => DocError::Conflict(format!(
            "revision {expected} is not the current revision {current}"
        )),
        WriteError::Duplicate(duplicates) => {
            let mut errors = FieldErrors::new();
            for duplicate in &duplicates {
                (collection.unique_error)(duplicate, &mut errors);
            }
            DocError::Invalid(errors)
        }
        WriteError::Invalid(errors) => DocError::Invalid(errors),
        WriteError::Store(e) => DocError::Store(e),
    }
}

/// PUT: validates and creates a document with a new id (or `id`, for imports).
pub async fn create(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    data: Value,
    id: Option<&str>,
    ctx: WriteContext<'_>,
) -> Result<StoredDoc, DocError> {
    let public = client_fields(data).map_err(DocError::Invalid)?;
    let id = id.map_or_else(crate::util::new_id, str::to_string);
    let pending = pending(store, collection, account_id, &id, public, None).await?;
    let write = DocWrite {
        account_id,
        collection: collection.name,
        pvt_type: collection.pvt_type,
        id: &id,
        op: WriteOp::Create,
        if_match: None,
        request_id: ctx.request_id,
        mutate: Box::new(move |current| prepare(collection, pending, current)),
    };
    store
        .write_doc(write)
        .await
        .map_err(|e| map_write_error(collection, &id, e))
}

/// POST: replaces every public field (Kazoo keeps `_id`, `_rev`, `pvt_*` from the stored doc).
pub async fn replace(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    data: Value,
    ctx: WriteContext<'_>,
) -> Result<StoredDoc, DocError> {
    let public = client_fields(data).map_err(DocError::Invalid)?;
    let pending = pending(store, collection, account_id, id, public, None).await?;
    write_existing(
        store,
        collection,
        account_id,
        id,
        WriteOp::Update,
        ctx,
        move |_| pending,
    )
    .await
}

/// Import: create or replace under a chosen id.
pub async fn upsert(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    data: Value,
    ctx: WriteContext<'_>,
) -> Result<StoredDoc, DocError> {
    let public = client_fields(data).map_err(DocError::Invalid)?;
    let pending = pending(store, collection, account_id, id, public, None).await?;
    write_existing(
        store,
        collection,
        account_id,
        id,
        WriteOp::Upsert,
        ctx,
        move |_| pending,
    )
    .await
}

/// PATCH: deep-merges `data` onto the stored public fields (under the write lock), then
/// validates the result as a whole.
pub async fn patch(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    data: Value,
    ctx: WriteContext<'_>,
) -> Result<StoredDoc, DocError> {
    let changes = client_fields(data).map_err(DocError::Invalid)?;
    // Write-only fields of a PATCH may depend on the current document (a new password is hashed
    // with the stored username); `finish` re-checks that under the lock.
    let base = match collection.private {
        Some(_) => store
            .get_doc(account_id, collection.name, id)?
            .map(|d| public_only(&d.body)),
        None => None,
    };
    let pending = pending(store, collection, account_id, id, changes, base).await?;
    write_existing(
        store,
        collection,
        account_id,
        id,
        WriteOp::Update,
        ctx,
        move |current| {
            let Pending {
                public: changes,
                private,
                keys,
            } = pending;
            Pending {
                public: merged_onto(current, changes),
                private,
                keys,
            }
        },
    )
    .await
}

/// Server-side update of an existing document: merges `public` changes (validated as usual) and
/// sets `private` fields (`null` removes one). Used by media uploads.
pub async fn set_server_fields(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    public: Map<String, Value>,
    private: Map<String, Value>,
    ctx: WriteContext<'_>,
) -> Result<StoredDoc, DocError> {
    let keys = KeyContext {
        account_realm: store.account(account_id)?.and_then(|a| a.realm),
    };
    write_existing(
        store,
        collection,
        account_id,
        id,
        WriteOp::Update,
        ctx,
        move |current| Pending {
            public: merged_onto(current, public),
            private,
            keys,
        },
    )
    .await
}

async fn write_existing(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    op: WriteOp,
    ctx: WriteContext<'_>,
    build: impl FnOnce(Option<&StoredDoc>) -> Pending + Send + 'static,
) -> Result<StoredDoc, DocError> {
    if !crate::util::is_valid_id(id) {
        return Err(DocError::NotFound(id.to_string()));
    }
    let write = DocWrite {
        account_id,
        collection: collection.name,
        pvt_type: collection.pvt_type,
        id,
        op,
        if_match: ctx.if_match,
        request_id: ctx.request_id,
        mutate: Box::new(move |current| prepare(collection, build(current), current)),
    };
    store
        .write_doc(write)
        .await
        .map_err(|e| map_write_error(collection, id, e))
}

/// DELETE: soft delete. The reply is the public document plus `"_read_only":{"deleted":true}`.
pub async fn delete(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
    ctx: WriteContext<'_>,
) -> Result<StoredDoc, DocError> {
    store
        .delete_doc(
            account_id,
            collection.name,
            id,
            ctx.if_match,
            ctx.request_id,
        )
        .await
        .map_err(|e| map_write_error(collection, id, e))
}

/// The DELETE reply body.
pub fn deleted_view(doc: &StoredDoc) -> Value {
    let mut public = doc.public();
    public.insert("_read_only".into(), json!({"deleted": true}));
    Value::Object(public)
}

/// GET one: the stored document (for its revision) and the reply body, public fields + `id` +
/// `metadata`.
pub fn fetch(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    id: &str,
) -> Result<(StoredDoc, Value), DocError> {
    let doc = store
        .get_doc(account_id, collection.name, id)?
        .ok_or_else(|| DocError::NotFound(id.to_string()))?;
    let mut view = doc.public();
    view.insert(
        "metadata".into(),
        metadata(store, account_id, &doc, (collection.references)(&doc.body))?,
    );
    Ok((doc, Value::Object(view)))
}

/// Crossbar's `metadata`: `{id: {name, numbers?, pvt_type}}` for every referenced id found in
/// any collection of the account.
fn metadata(
    store: &dyn Store,
    account_id: &str,
    doc: &StoredDoc,
    ids: Vec<String>,
) -> Result<Value, StoreError> {
    let mut out = Map::new();
    for id in ids {
        if id == doc.id || !crate::util::is_valid_id(&id) {
            continue;
        }
        for other in collections() {
            if let Some(found) = store.get_doc(account_id, other.name, &id)? {
                let mut entry = Map::new();
                entry.insert("name".into(), display_name(&found.body));
                if let Some(numbers) = found.body.get("numbers") {
                    entry.insert("numbers".into(), numbers.clone());
                }
                entry.insert("pvt_type".into(), Value::String(other.pvt_type.to_string()));
                out.insert(id.clone(), Value::Object(entry));
                break;
            }
        }
    }
    Ok(Value::Object(out))
}

/// A document's display name: `name`, or a user's `first_name last_name`.
fn display_name(body: &Map<String, Value>) -> Value {
    if let Some(name) = body.get("name") {
        return name.clone();
    }
    let parts: Vec<&str> = ["first_name", "last_name"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .collect();
    if parts.is_empty() {
        Value::Null
    } else {
        Value::String(parts.join(" "))
    }
}

/// The current document's public fields with `changes` deep-merged in (PATCH semantics).
fn merged_onto(current: Option<&StoredDoc>, changes: Map<String, Value>) -> Map<String, Value> {
    let mut merged = current.map(|d| public_only(&d.body)).unwrap_or_default();
    deep_merge(&mut merged, changes);
    merged
}

fn public_only(body: &Map<String, Value>) -> Map<String, Value> {
    crate::store::public_fields(body)
}

/// GET list: summaries of live documents matching the filters, one page.
pub fn list(
    store: &dyn Store,
    collection: &'static Collection,
    account_id: &str,
    params: &ListParams,
) -> Result<ListResult, DocError> {
    listing::run(store, collection, account_id, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_fields_drop_private_and_computed_keys() {
        let fields = client_fields(json!({"name": "x", "_rev": "1", "pvt_type": "t", "id": "i",
            "metadata": {}, "_read_only": {}, "ui_metadata": {"a": 1}}))
        .unwrap();
        assert_eq!(
            Value::Object(fields),
            json!({"name": "x", "ui_metadata": {"a": 1}})
        );
        assert!(client_fields(json!([1])).is_err());
    }

    #[test]
    fn registry_finds_collections_and_aliases() {
        assert_eq!(
            collection("callflows").map(|c| c.pvt_type),
            Some("callflow")
        );
        assert_eq!(
            collection("temporal_rule_sets").map(|c| c.name),
            Some("temporal_rules_sets")
        );
        assert!(collection("nope").is_none());
    }

    #[test]
    fn every_collection_schema_compiles() {
        for c in collections() {
            let schema = (c.schema)();
            assert!(schema.is_object(), "{}", c.name);
            assert!(
                jsonschema::options().build(&schema).is_ok(),
                "{} schema must compile",
                c.name
            );
        }
    }
}

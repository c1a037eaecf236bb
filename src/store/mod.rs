//! Durable storage behind small traits, so a shared cluster backend can replace sled later.
//!
//! [`StoreRead`] is all the call engine may touch (DESIGN.md: the engine never writes documents);
//! [`Store`] adds the writes the API performs. A write returns only after it is flushed to disk and
//! the in-memory [`RoutingIndex`] reflects it, which is what a 2xx from the API promises.
//!
//! Documents are generic: every collection (`callflows` now; devices, users, menus... later) is
//! stored under `(account, collection, id)` with the same private fields, revisions, soft deletes
//! and exact-string uniqueness keys ([`UniqueKey`]). What a collection means (its schema, which
//! keys are unique) lives in `crate::documents`, not here. The one collection the store knows by
//! name is [`ROUTED_COLLECTION`]: its `numbers`/`patterns` keys feed the routing index.

pub mod memory;
pub mod sled_store;

use crate::auth::secrets::{ApiKeyHash, DigestMethod, UserCredential};
use crate::callflow::errors::FieldErrors;
use crate::callflow::routing::RoutingIndex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use sled_store::SledStore;

/// The collection whose unique keys (`numbers`, `patterns`) are mirrored into the routing index.
pub const ROUTED_COLLECTION: &str = "callflows";
/// Unique-key kind of exact numbers (routing + uniqueness).
pub const KIND_NUMBERS: &str = "numbers";
/// Unique-key kind of regex patterns (routing + uniqueness).
pub const KIND_PATTERNS: &str = "patterns";
/// The collection whose documents may carry a login ([`LOGIN_FIELD`]) checked by `user_auth`.
pub const USERS_COLLECTION: &str = "users";
/// Private field of a `users` document holding its [`UserCredential`] (argon2 digests only).
pub const LOGIN_FIELD: &str = "pvt_login";

/// An account: the tenant every document and call belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// 32 lowercase hex characters, like Kazoo's ids.
    pub id: String,
    /// Display name; also what `user_auth` matches `account_name` against.
    pub name: String,
    /// SIP realm; calls whose domain equals it belong to this account.
    pub realm: Option<String>,
}

/// Failures of the storage layer, mapped to HTTP / hangup causes by the callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database itself failed (I/O, corruption).
    #[error("storage failure: {0}")]
    Backend(String),
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Backend(error.to_string())
    }
}

impl From<sled::Error> for WriteError {
    fn from(error: sled::Error) -> Self {
        WriteError::Store(error.into())
    }
}

impl From<sled::Error> for AccountError {
    fn from(error: sled::Error) -> Self {
        AccountError::Store(error.into())
    }
}

/// The read side the call engine uses: accounts, documents by id, and the routing index.
pub trait StoreRead: Send + Sync + 'static {
    /// The routing index this store keeps in step with its writes.
    fn routing(&self) -> &Arc<RoutingIndex>;
    /// An account by id.
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    /// The account whose realm equals `realm` (case-insensitive).
    fn account_by_realm(&self, realm: &str) -> Result<Option<Account>, StoreError>;
    /// A live (not deleted) document of a collection (`callflows`, `menus`, ...), public fields
    /// plus `id`.
    fn document(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>, StoreError>;
    /// Every live document of one account's collection, ascending by id (resources, lists: small
    /// per-account collections).
    fn documents(&self, account_id: &str, collection: &str) -> Result<Vec<Value>, StoreError>;
    /// Live documents of one account's collection whose field at the dotted path `field` equals
    /// `value` (the devices of a user, the device with a SIP username). Scans that account's
    /// collection only, never the whole database.
    fn documents_where(
        &self,
        account_id: &str,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<Value>, StoreError>;
}

/// Reads a dotted path (`sip.username`) out of a JSON document.
pub fn field_at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, key| v.get(key))
}

/// Whether the field at `path` equals `value` (strings compare as text, other scalars by their
/// JSON spelling, arrays when any item matches).
pub fn field_matches(doc: &Value, path: &str, value: &str) -> bool {
    fn scalar(v: &Value, value: &str) -> bool {
        match v {
            Value::String(s) => s == value,
            Value::Array(items) => items.iter().any(|i| scalar(i, value)),
            Value::Bool(b) => value == if *b { "true" } else { "false" },
            Value::Number(n) => n.to_string() == value,
            Value::Null | Value::Object(_) => false,
        }
    }
    field_at(doc, path).is_some_and(|v| scalar(v, value))
}

/// A boxed future, so [`Store`] stays object-safe (`Arc<dyn Store>`) while writes can await the
/// disk flush.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One exact-string uniqueness key of a document, e.g. `("numbers", "1000")`. Two live documents
/// of the same account and collection can never hold the same key; a [`global`](Self::global)
/// key is unique across every account (a device's SIP `username@realm`: FreeSWITCH's directory
/// must find exactly one device for it) and can be looked up with
/// [`Store::global_key_owner`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UniqueKey {
    /// Field the key comes from (`numbers`, `patterns`); also the error's field path.
    pub kind: String,
    /// The exact value.
    pub value: String,
    /// Unique across all accounts, not only within the document's account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub global: bool,
}

impl UniqueKey {
    /// A key unique within the document's account and collection.
    pub fn new(kind: &str, value: &str) -> Self {
        UniqueKey {
            kind: kind.to_string(),
            value: value.to_string(),
            global: false,
        }
    }

    /// A key unique within the collection across every account.
    pub fn global(kind: &str, value: &str) -> Self {
        UniqueKey {
            global: true,
            ..UniqueKey::new(kind, value)
        }
    }
}

/// A stored document as the store holds it: public fields, `id`, `_rev` and `pvt_*`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    /// Document id.
    pub id: String,
    /// The whole stored object (private fields included).
    pub body: Map<String, Value>,
}

impl StoredDoc {
    /// The revision (`N-<hex>`), also sent as the ETag.
    pub fn revision(&self) -> &str {
        self.body
            .get("_rev")
            .and_then(Value::as_str)
            .unwrap_or("0-0")
    }

    /// The revision's sequence number `N`.
    pub fn revision_number(&self) -> u64 {
        self.revision()
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Public fields plus `id`: never `_*` or `pvt_*` (Kazoo's rule for what leaves the server).
    pub fn public(&self) -> Map<String, Value> {
        let mut out = public_fields(&self.body);
        out.insert("id".into(), Value::String(self.id.clone()));
        out
    }
}

/// Drops the private keys (`_*`, `pvt_*`) and `id` of a top-level object.
pub fn public_fields(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| !is_private_key(k) && k.as_str() != "id")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a top-level key is private to the server (`_id`, `_rev`, `pvt_type`, ...).
pub fn is_private_key(key: &str) -> bool {
    key.starts_with('_') || key.starts_with("pvt_")
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// A new document; fails if the id exists.
    Create,
    /// Replace a live document (POST, PATCH); fails if it does not exist.
    Update,
    /// Create or replace (import).
    Upsert,
}

/// The new public content of a document, computed from the current one under the account's
/// write lock (so PATCH merges onto exactly what it replaces).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Public fields (no `id`, `_*`, `pvt_*`).
    pub public: Map<String, Value>,
    /// Uniqueness keys of the new content.
    pub unique: Vec<UniqueKey>,
    /// Server-managed private fields stored with the document and never returned (only `pvt_*`
    /// keys are kept; the store's own `pvt_type`, `pvt_created`... always win). Private fields
    /// of the current document that are not repeated here are dropped.
    pub private: Map<String, Value>,
}

/// Computes [`Prepared`] from the current live document (`None` for a create).
pub type Mutation<'a> =
    Box<dyn FnOnce(Option<&StoredDoc>) -> Result<Prepared, WriteError> + Send + 'a>;

/// A document write request.
pub struct DocWrite<'a> {
    /// Owning account.
    pub account_id: &'a str,
    /// Collection name (`callflows`).
    pub collection: &'a str,
    /// Kazoo's `pvt_type` for this collection (`callflow`).
    pub pvt_type: &'a str,
    /// Document id (generated by the caller for a create).
    pub id: &'a str,
    /// Create / update / upsert.
    pub op: WriteOp,
    /// An `If-Match` revision; a mismatch fails with [`WriteError::StaleRevision`].
    pub if_match: Option<&'a str>,
    /// Recorded as `pvt_request_id`.
    pub request_id: &'a str,
    /// Builds the new content from the current one.
    pub mutate: Mutation<'a>,
}

/// A uniqueness collision found under the write lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    /// The key that is taken.
    pub key: UniqueKey,
    /// The document holding it (empty when it belongs to another account: never disclosed).
    pub owner_id: String,
    /// That document's `name` (for Kazoo's message), if any (never for another account's).
    pub owner_name: Option<String>,
    /// The holder is in another account (only for global keys).
    pub other_account: bool,
}

/// Why a document write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Update of an id that is not live.
    #[error("no such document")]
    NotFound,
    /// Create with an id that already exists.
    #[error("document already exists")]
    Exists,
    /// `If-Match` named another revision.
    #[error("revision {expected} is stale (current {current})")]
    StaleRevision {
        /// What the client sent.
        expected: String,
        /// What is stored.
        current: String,
    },
    /// Another live document holds one of the keys.
    #[error("unique key already used")]
    Duplicate(Vec<Duplicate>),
    /// The mutation refused the content (validation).
    #[error("validation failed")]
    Invalid(FieldErrors),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct DocPage {
    /// The documents, ascending by id.
    pub docs: Vec<StoredDoc>,
    /// Id of the first matching document after this page (`None` on the last page).
    pub next: Option<String>,
}

/// Which part of a collection to list.
pub struct ListRequest<'a> {
    /// Owning account.
    pub account_id: &'a str,
    /// Collection name.
    pub collection: &'a str,
    /// First id to include (ids sort ascending).
    pub start: Option<&'a str>,
    /// Page size; `None` = everything.
    pub limit: Option<usize>,
    /// Keeps a document when true (the listing filters).
    pub filter: &'a (dyn Fn(&StoredDoc) -> bool + Sync),
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another account has this name (`user_auth` looks accounts up by name).
    #[error("an account named {0:?} already exists")]
    NameTaken(String),
    /// Another account has this realm (calls are routed to accounts by realm).
    #[error("an account with realm {0:?} already exists")]
    RealmTaken(String),
    /// Name empty or too long.
    #[error("invalid account: {0}")]
    Invalid(String),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A login looked up by `user_auth`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserLogin {
    /// The user's id (the token's `owner_id`).
    pub user_id: String,
}

/// What [`Store::check_consistency`] found: counts of what was scanned and every disagreement
/// between the documents, the unique-key (number/pattern) index and the in-memory routing index.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConsistencyReport {
    /// Accounts checked.
    pub accounts: usize,
    /// Live documents scanned (every collection).
    pub live_documents: usize,
    /// Soft-deleted documents scanned.
    pub deleted_documents: usize,
    /// Unique-key slots scanned (account-scoped and global).
    pub unique_entries: usize,
    /// Numbers the live callflows hold (each must route to its callflow).
    pub numbers: usize,
    /// Patterns the live callflows hold.
    pub patterns: usize,
    /// One line per disagreement; empty when the store is consistent.
    pub problems: Vec<String>,
}

impl ConsistencyReport {
    /// No disagreement found.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for ConsistencyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "accounts           {}", self.accounts)?;
        writeln!(f, "live documents     {}", self.live_documents)?;
        writeln!(f, "deleted documents  {}", self.deleted_documents)?;
        writeln!(f, "unique-key slots   {}", self.unique_entries)?;
        writeln!(f, "callflow numbers   {}", self.numbers)?;
        writeln!(f, "callflow patterns  {}", self.patterns)?;
        write!(f, "problems           {}", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// The write side, plus the reads only the API needs. Object-safe: the API holds
/// `Arc<dyn Store>`.
pub trait Store: StoreRead {
    /// A live document with its private fields.
    fn get_doc(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<StoredDoc>, StoreError>;

    /// A page of live documents, ascending by id, filtered. Reads only this account's collection
    /// range, never the whole database.
    fn list_docs(&self, request: &ListRequest<'_>) -> Result<DocPage, StoreError>;

    /// Creates or replaces a document atomically with its uniqueness keys, flushes, then updates
    /// the routing index. Returns the stored document.
    fn write_doc<'a>(
        &'a self,
        write: DocWrite<'a>,
    ) -> StoreFuture<'a, Result<StoredDoc, WriteError>>;

    /// Soft-deletes a live document (`pvt_deleted: true`, out of listings and indexes), flushes.
    /// Returns the deleted document.
    fn delete_doc<'a>(
        &'a self,
        account_id: &'a str,
        collection: &'a str,
        id: &'a str,
        if_match: Option<&'a str>,
        request_id: &'a str,
    ) -> StoreFuture<'a, Result<StoredDoc, WriteError>>;

    /// Creates an account (unique name and realm), flushed.
    fn create_account<'a>(
        &'a self,
        name: &'a str,
        realm: Option<&'a str>,
    ) -> StoreFuture<'a, Result<Account, AccountError>>;

    /// The account with this name (case-insensitive).
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError>;

    /// How many accounts exist (first start creates one when there are none).
    fn account_count(&self) -> Result<usize, StoreError>;

    /// Stores an API key's hash for an account, flushed.
    fn add_api_key<'a>(
        &'a self,
        account_id: &'a str,
        key: ApiKeyHash,
    ) -> StoreFuture<'a, Result<(), StoreError>>;

    /// The account an API key belongs to, if the key is valid (constant-time hash check).
    fn verify_api_key(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Stores a user's login for an account, flushed.
    fn add_user_credential<'a>(
        &'a self,
        account_id: &'a str,
        credential: UserCredential,
    ) -> StoreFuture<'a, Result<(), StoreError>>;

    /// The `(account_id, document_id)` of the live document holding a global unique key.
    fn global_key_owner(
        &self,
        collection: &str,
        key: &UniqueKey,
    ) -> Result<Option<(String, String)>, StoreError>;

    /// Checks a `user_auth` digest against the account's logins: those added with
    /// [`Store::add_user_credential`] and the [`LOGIN_FIELD`] of its enabled `users` documents.
    fn verify_user_credentials(
        &self,
        account_id: &str,
        method: DigestMethod,
        digest_hex: &str,
    ) -> Result<Option<UserLogin>, StoreError>;

    /// The persistent token signing key (created on first open).
    fn signing_key(&self) -> Result<Vec<u8>, StoreError>;

    /// Flushes everything to disk (shutdown).
    fn flush<'a>(&'a self) -> StoreFuture<'a, Result<(), StoreError>>;

    /// Scans the documents (of one account, or all) and checks them against the unique-key
    /// index and the routing index: every live document is well-formed, its stored key list
    /// matches its `numbers`/`patterns` (callflows), every key slot points at a live document
    /// that lists that key and vice versa, no id is both live and deleted, and every number and
    /// pattern routes to the callflow holding it. Meant for a quiescent store (`callflowd fsck`
    /// with the server stopped, or tests); concurrent writes can show as transient problems.
    fn check_consistency(&self, account_id: Option<&str>) -> Result<ConsistencyReport, StoreError>;
}

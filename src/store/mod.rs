//! Durable storage behind small traits, so a shared cluster backend can replace sled later.
//!
//! [`StoreRead`] is all the call engine may touch (DESIGN.md: the engine never writes documents);
//! [`Store`] adds the writes the API performs. A write returns only after it is flushed to disk and
//! the in-memory [`RoutingIndex`] reflects it, which is what a 2xx from the API promises.

pub mod memory;

use crate::callflow::routing::RoutingIndex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

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

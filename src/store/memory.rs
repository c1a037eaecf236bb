//! An in-memory [`StoreRead`] for unit tests and `simulate --flow FILE` dry runs: documents and
//! accounts in hash maps, with the routing index kept in step exactly as the sled store does.

use super::{Account, StoreError, StoreRead, field_matches};
use crate::callflow::routing::RoutingIndex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Documents keyed by (account, collection, id).
type Docs = HashMap<(String, String, String), Value>;

/// A process-local store; nothing is persisted.
#[derive(Default)]
pub struct MemStore {
    routing: Arc<RoutingIndex>,
    accounts: RwLock<HashMap<String, Account>>,
    docs: RwLock<Docs>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an account.
    pub fn add_account(&self, account: Account) {
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        accounts.insert(account.id.clone(), account);
    }

    /// Stores a document as-is (the caller validated it). Callflows are indexed by their
    /// `numbers` and `patterns`.
    pub fn put(&self, account_id: &str, collection: &str, id: &str, mut doc: Value) {
        if let Some(object) = doc.as_object_mut() {
            object.insert("id".into(), Value::String(id.to_string()));
        }
        if collection == "callflows" {
            let strings = |key: &str| -> Vec<String> {
                doc.get(key)
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            self.routing
                .set_callflow(account_id, id, strings("numbers"), strings("patterns"));
        }
        let mut docs = self.docs.write().unwrap_or_else(|e| e.into_inner());
        docs.insert((account_id.into(), collection.into(), id.into()), doc);
    }

    /// Removes a document.
    pub fn remove(&self, account_id: &str, collection: &str, id: &str) {
        if collection == "callflows" {
            self.routing.remove_callflow(account_id, id);
        }
        let mut docs = self.docs.write().unwrap_or_else(|e| e.into_inner());
        docs.remove(&(account_id.into(), collection.into(), id.into()));
    }
}

impl StoreRead for MemStore {
    fn routing(&self) -> &Arc<RoutingIndex> {
        &self.routing
    }

    fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        Ok(accounts.get(id).cloned())
    }

    fn account_by_realm(&self, realm: &str) -> Result<Option<Account>, StoreError> {
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        Ok(accounts
            .values()
            .find(|a| {
                a.realm
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(realm))
            })
            .cloned())
    }

    fn document(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let docs = self.docs.read().unwrap_or_else(|e| e.into_inner());
        Ok(docs
            .get(&(
                account_id.to_string(),
                collection.to_string(),
                id.to_string(),
            ))
            .cloned())
    }

    fn documents(&self, account_id: &str, collection: &str) -> Result<Vec<Value>, StoreError> {
        let docs = self.docs.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<Value> = docs
            .iter()
            .filter(|((a, c, _), _)| a == account_id && c == collection)
            .map(|(_, doc)| doc.clone())
            .collect();
        found.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(found)
    }

    fn documents_where(
        &self,
        account_id: &str,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<Value>, StoreError> {
        let docs = self.docs.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<Value> = docs
            .iter()
            .filter(|((a, c, _), doc)| {
                a == account_id && c == collection && field_matches(doc, field, value)
            })
            .map(|(_, doc)| doc.clone())
            .collect();
        found.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indexes_callflows() {
        let store = MemStore::new();
        store.put(
            "a",
            "callflows",
            "cf",
            json!({"numbers": ["1000"], "flow": {}}),
        );
        assert!(store.routing().lookup("a", "1000").is_some());
        assert_eq!(
            store.document("a", "callflows", "cf").unwrap().unwrap()["id"],
            json!("cf")
        );
        store.remove("a", "callflows", "cf");
        assert!(store.routing().lookup("a", "1000").is_none());
    }
}

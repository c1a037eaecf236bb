//! The sled implementation of [`Store`]: one sled tree, keys grouped by prefix.
//!
//! ```text
//! doc/{account}/{collection}/{id}            -> live document (JSON, private fields included)
//! del/{account}/{collection}/{id}            -> soft-deleted document (pvt_deleted: true)
//! uniq/{account}/{collection}/{kind}/{value} -> id of the live document holding that key
//! guniq/{collection}/{kind}/{value}          -> "{account}/{id}" holding a global key
//! keys/{account}/{collection}/{id}           -> that document's unique keys (JSON list)
//! acct/{id}                                  -> account
//! acctname/{lowercase name}                  -> account id
//! acctrealm/{lowercase realm}                -> account id
//! apikey/{key id}                            -> {account_id, hash}: salted API key hash
//! user/{account}/{user id}                   -> user login (argon2 digests)
//! meta/signing_key                           -> token signing key
//! ```
//!
//! Ids and account ids never contain `/` (checked by `util::is_valid_id`), so every prefix is
//! exact. Live and deleted documents are kept apart so a listing is a range over live documents
//! only: reads never scan the whole database.
//!
//! **Atomicity and durability.** Writes of one account are serialised by an async mutex (sled is
//! single-process, so this is the whole story); under it the uniqueness check runs against
//! `uniq/`, then the document, its keys and the `uniq/` entries go to disk in one atomic
//! `Batch`, and the routing index is updated. The lock is released *before* the fsync
//! (`durable`), so concurrent writers share one flush (group commit); each still replies only
//! after a flush that covers its batch has completed.

use super::*;
use crate::auth::secrets::{ApiKeyHash, DigestMethod, UserCredential, api_key_id};
use crate::util;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SIGNING_KEY: &[u8] = b"meta/signing_key";

/// The sled-backed store. Cheap to share behind an `Arc`.
pub struct SledStore {
    db: sled::Db,
    routing: Arc<RoutingIndex>,
    account_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    accounts_lock: tokio::sync::Mutex<()>,
    commits: GroupCommit,
}

/// Group commit: writers that finished their in-memory write take a ticket; one flush covers
/// every ticket issued before it started, so a burst of N writers costs a few fsyncs, not N.
#[derive(Default)]
struct GroupCommit {
    /// Tickets issued (writes applied in memory).
    issued: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    /// One flush at a time; waiters re-check `durable` when they get it.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct ApiKeyRecord {
    account_id: String,
    hash: ApiKeyHash,
}

/// sled's page cache unless configured (`db_cache_mb`): documents are small and the routing index
/// lives apart from sled, so 64 MiB holds the working set of a large installation.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl SledStore {
    /// Opens (or creates) the database in `dir`, makes sure a signing key exists, and rebuilds
    /// the routing index from the stored number/pattern index (not from the documents).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`SledStore::open`] with sled's page cache capped at `cache_bytes`: sled's own default
    /// (1 GiB) lets a long-running server's RSS creep up with every page it ever touched.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Backend(format!(
                        "database {} is in use by another process (is `callflowd serve` running?)",
                        dir.display()
                    ))
                }
                other => StoreError::from(other),
            })?;
        let store = SledStore {
            db,
            routing: Arc::new(RoutingIndex::new()),
            account_locks: Mutex::new(HashMap::new()),
            accounts_lock: tokio::sync::Mutex::new(()),
            commits: GroupCommit::default(),
        };
        if store.db.get(SIGNING_KEY)?.is_none() {
            store
                .db
                .insert(SIGNING_KEY, util::random_hex(32).into_bytes())?;
            store.db.flush()?;
        }
        store.rebuild_routing()?;
        Ok(store)
    }

    /// Waits until everything this caller wrote is on disk (fsync), sharing flushes with
    /// concurrent writers ([`GroupCommit`]). The flush itself runs on tokio's blocking pool:
    /// sled's own `flush_async` uses sled's global thread pool, which stalled under many
    /// concurrent flushes in our tests.
    async fn durable(&self) -> Result<(), StoreError> {
        let ticket = self.commits.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.commits.flushing.lock().await;
        if self.commits.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket issued so far belongs to a write already applied in memory, so this flush
        // makes all of them durable.
        let covered = self.commits.issued.load(Ordering::SeqCst);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Backend(format!("flush task failed: {e}")))??;
        self.commits.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    /// Removes soft-deleted documents whose deletion (`pvt_modified`) is older than `retention`,
    /// then flushes; returns how many went. Kazoo's periodic cleanup does the same, so a table
    /// that sees create/delete churn does not grow forever. Each removal is a compare-and-swap
    /// against the copy that was scanned, so a document deleted again meanwhile (a fresher
    /// copy) is kept. Entries that do not decode are left for `fsck` to report.
    pub async fn purge_deleted(&self, retention: Duration) -> Result<usize, StoreError> {
        let cutoff = util::gregorian_now().saturating_sub(retention.as_secs());
        let mut purged = 0usize;
        for item in self.db.scan_prefix(b"del/") {
            let (key, value) = item?;
            let Ok(body) = serde_json::from_slice::<Value>(&value) else {
                continue;
            };
            let deleted_at = body.get("pvt_modified").and_then(Value::as_u64);
            if deleted_at.is_none_or(|at| at >= cutoff) {
                continue;
            }
            let removed = self
                .db
                .compare_and_swap(&key, Some(&value), None::<&[u8]>)?
                .is_ok();
            purged += usize::from(removed);
        }
        if purged > 0 {
            self.durable().await?;
        }
        Ok(purged)
    }

    /// Fills the routing index from `keys/{account}/callflows/{id}` entries.
    fn rebuild_routing(&self) -> Result<(), StoreError> {
        let mut count = 0usize;
        for item in self.db.scan_prefix(b"keys/") {
            let (key, value) = item?;
            let key = String::from_utf8_lossy(&key);
            let mut parts = key.splitn(4, '/').skip(1);
            let (Some(account), Some(collection), Some(id)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if collection != ROUTED_COLLECTION {
                continue;
            }
            let keys: Vec<UniqueKey> = decode(&value)?;
            let (numbers, patterns) = split_routing_keys(&keys);
            self.routing.set_callflow(account, id, numbers, patterns);
            count += 1;
        }
        tracing::info!(
            callflows = count,
            "routing index rebuilt from the number/pattern index"
        );
        Ok(())
    }

    fn account_lock(&self, account_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.account_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(account_id.to_string()).or_default().clone()
    }

    fn read_doc(&self, key: &str, id: &str) -> Result<Option<StoredDoc>, StoreError> {
        match self.db.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(StoredDoc {
                id: id.to_string(),
                body: decode(&bytes)?,
            })),
            None => Ok(None),
        }
    }

    fn stored_keys(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
    ) -> Result<Vec<UniqueKey>, StoreError> {
        match self.db.get(keys_key(account_id, collection, id))? {
            Some(bytes) => decode(&bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Adds the removal of a unique-key slot to `batch`, if this document still holds it.
    fn release_key(
        &self,
        batch: &mut sled::Batch,
        account_id: &str,
        collection: &str,
        id: &str,
        key: &UniqueKey,
    ) -> Result<(), StoreError> {
        let slot = uniq_key(account_id, collection, key);
        let tag = owner_tag(account_id, id, key);
        if self
            .db
            .get(&slot)?
            .is_some_and(|owner| owner.as_ref() == tag.as_bytes())
        {
            batch.remove(slot);
        }
        Ok(())
    }

    fn owner_name(&self, account_id: &str, collection: &str, owner_id: &str) -> Option<String> {
        self.read_doc(&doc_key(account_id, collection, owner_id), owner_id)
            .ok()
            .flatten()
            .and_then(|d| {
                d.body
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    }

    fn update_routing(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
        keys: Option<&[UniqueKey]>,
    ) {
        if collection != ROUTED_COLLECTION {
            return;
        }
        match keys {
            Some(keys) => {
                let (numbers, patterns) = split_routing_keys(keys);
                self.routing.set_callflow(account_id, id, numbers, patterns);
            }
            None => self.routing.remove_callflow(account_id, id),
        }
    }

    async fn write_doc_inner(&self, write: DocWrite<'_>) -> Result<StoredDoc, WriteError> {
        let DocWrite {
            account_id,
            collection,
            pvt_type,
            id,
            op,
            if_match,
            request_id,
            mutate,
        } = write;
        check_segment(account_id)?;
        check_segment(id)?;
        let lock = self.account_lock(account_id);
        let guard = lock.lock().await;

        let key = doc_key(account_id, collection, id);
        let existing = self.read_doc(&key, id)?;
        match (op, &existing) {
            (WriteOp::Create, Some(_)) => return Err(WriteError::Exists),
            (WriteOp::Update, None) => return Err(WriteError::NotFound),
            _ => {}
        }
        if let (Some(expected), Some(current)) = (if_match, &existing) {
            check_revision(expected, current)?;
        }
        let prepared = mutate(existing.as_ref())?;

        let mut unique = prepared.unique;
        unique.sort();
        unique.dedup();
        let mut duplicates = Vec::new();
        for k in &unique {
            if let Some(owner) = self.db.get(uniq_key(account_id, collection, k))? {
                let owner = String::from_utf8_lossy(&owner).into_owned();
                if owner != owner_tag(account_id, id, k) {
                    let (owner_account, owner_id) = split_owner(account_id, &owner, k);
                    let same_account = owner_account == account_id;
                    duplicates.push(Duplicate {
                        key: k.clone(),
                        owner_name: if same_account {
                            self.owner_name(account_id, collection, &owner_id)
                        } else {
                            None
                        },
                        owner_id: if same_account {
                            owner_id
                        } else {
                            String::new()
                        },
                        other_account: !same_account,
                    });
                }
            }
        }
        if !duplicates.is_empty() {
            return Err(WriteError::Duplicate(duplicates));
        }

        let now = util::gregorian_now();
        let number = existing.as_ref().map_or(0, StoredDoc::revision_number) + 1;
        let mut body = prepared.public;
        body.retain(|k, _| !is_private_key(k) && k != "id");
        let revision = format!("{number}-{}", content_hash(&body));
        for (k, v) in prepared.private {
            if k.starts_with("pvt_") {
                body.insert(k, v);
            }
        }
        body.insert("_id".into(), Value::String(id.to_string()));
        body.insert("_rev".into(), Value::String(revision));
        body.insert("pvt_type".into(), Value::String(pvt_type.to_string()));
        body.insert("pvt_vsn".into(), Value::String("1".into()));
        body.insert(
            "pvt_account_id".into(),
            Value::String(account_id.to_string()),
        );
        let created = existing
            .as_ref()
            .and_then(|d| d.body.get("pvt_created").cloned())
            .unwrap_or_else(|| Value::from(now));
        body.insert("pvt_created".into(), created);
        body.insert("pvt_modified".into(), Value::from(now));
        body.insert(
            "pvt_request_id".into(),
            Value::String(request_id.to_string()),
        );

        let mut batch = sled::Batch::default();
        batch.insert(key.as_bytes(), encode(&body)?);
        batch.remove(del_key(account_id, collection, id).as_bytes());
        for old in self.stored_keys(account_id, collection, id)? {
            if unique.binary_search(&old).is_err() {
                self.release_key(&mut batch, account_id, collection, id, &old)?;
            }
        }
        for k in &unique {
            batch.insert(
                uniq_key(account_id, collection, k),
                owner_tag(account_id, id, k).into_bytes(),
            );
        }
        batch.insert(keys_key(account_id, collection, id), encode(&unique)?);
        self.db.apply_batch(batch)?;
        self.update_routing(account_id, collection, id, Some(&unique));
        drop(guard);

        self.durable().await?;
        Ok(StoredDoc {
            id: id.to_string(),
            body,
        })
    }

    async fn delete_doc_inner(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
        if_match: Option<&str>,
        request_id: &str,
    ) -> Result<StoredDoc, WriteError> {
        if check_segment(account_id).is_err() || check_segment(id).is_err() {
            return Err(WriteError::NotFound);
        }
        let lock = self.account_lock(account_id);
        let guard = lock.lock().await;
        let key = doc_key(account_id, collection, id);
        let Some(existing) = self.read_doc(&key, id)? else {
            return Err(WriteError::NotFound);
        };
        if let Some(expected) = if_match {
            check_revision(expected, &existing)?;
        }
        let mut body = existing.body.clone();
        let number = existing.revision_number() + 1;
        let revision = format!("{number}-{}", content_hash(&public_fields(&body)));
        body.insert("_rev".into(), Value::String(revision));
        body.insert("pvt_deleted".into(), Value::Bool(true));
        body.insert("pvt_modified".into(), Value::from(util::gregorian_now()));
        body.insert(
            "pvt_request_id".into(),
            Value::String(request_id.to_string()),
        );

        let mut batch = sled::Batch::default();
        batch.remove(key.as_bytes());
        batch.insert(
            del_key(account_id, collection, id).as_bytes(),
            encode(&body)?,
        );
        for old in self.stored_keys(account_id, collection, id)? {
            self.release_key(&mut batch, account_id, collection, id, &old)?;
        }
        batch.remove(keys_key(account_id, collection, id));
        self.db.apply_batch(batch)?;
        self.update_routing(account_id, collection, id, None);
        drop(guard);

        self.durable().await?;
        Ok(StoredDoc {
            id: id.to_string(),
            body,
        })
    }

    async fn create_account_inner(
        &self,
        name: &str,
        realm: Option<&str>,
    ) -> Result<Account, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(AccountError::Invalid(
                "name must be 1..128 characters".into(),
            ));
        }
        let realm = realm.map(str::trim).filter(|r| !r.is_empty());
        if realm.is_some_and(|r| r.len() > 253) {
            return Err(AccountError::Invalid(
                "realm must be at most 253 characters".into(),
            ));
        }
        let _guard = self.accounts_lock.lock().await;
        let name_key = format!("acctname/{}", name.to_lowercase());
        if self.db.get(name_key.as_bytes())?.is_some() {
            return Err(AccountError::NameTaken(name.to_string()));
        }
        let realm_key = realm.map(|r| format!("acctrealm/{}", r.to_lowercase()));
        if let Some(realm_key) = &realm_key {
            if self.db.get(realm_key.as_bytes())?.is_some() {
                return Err(AccountError::RealmTaken(
                    realm.unwrap_or_default().to_string(),
                ));
            }
        }
        let account = Account {
            id: util::new_id(),
            name: name.to_string(),
            realm: realm.map(str::to_string),
        };
        let mut batch = sled::Batch::default();
        batch.insert(format!("acct/{}", account.id).as_bytes(), encode(&account)?);
        batch.insert(name_key.as_bytes(), account.id.as_bytes());
        if let Some(realm_key) = realm_key {
            batch.insert(realm_key.as_bytes(), account.id.as_bytes());
        }
        self.db.apply_batch(batch).map_err(StoreError::from)?;
        self.durable().await?;
        Ok(account)
    }

    /// Public views of one account's live documents of a collection that satisfy `keep` (a range
    /// over that collection only).
    fn documents_where_inner(
        &self,
        account_id: &str,
        collection: &str,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Vec<Value>, StoreError> {
        if check_segment(account_id).is_err() {
            return Ok(Vec::new());
        }
        let page = self.list_docs(&ListRequest {
            account_id,
            collection,
            start: None,
            limit: None,
            filter: &|_| true,
        })?;
        Ok(page
            .docs
            .iter()
            .map(|d| Value::Object(d.public()))
            .filter(|v| keep(v))
            .collect())
    }

    fn account_by_index(&self, index_key: String) -> Result<Option<Account>, StoreError> {
        match self.db.get(index_key.as_bytes())? {
            Some(id) => self.account(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }
}

impl StoreRead for SledStore {
    fn routing(&self) -> &Arc<RoutingIndex> {
        &self.routing
    }

    fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        if check_segment(id).is_err() {
            return Ok(None);
        }
        match self.db.get(format!("acct/{id}").as_bytes())? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn account_by_realm(&self, realm: &str) -> Result<Option<Account>, StoreError> {
        self.account_by_index(format!("acctrealm/{}", realm.trim().to_lowercase()))
    }

    fn document(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        Ok(self
            .get_doc(account_id, collection, id)?
            .map(|d| Value::Object(d.public())))
    }

    fn documents(&self, account_id: &str, collection: &str) -> Result<Vec<Value>, StoreError> {
        self.documents_where_inner(account_id, collection, &|_| true)
    }

    fn documents_where(
        &self,
        account_id: &str,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<Value>, StoreError> {
        self.documents_where_inner(account_id, collection, &|doc| {
            super::field_matches(doc, field, value)
        })
    }
}

impl Store for SledStore {
    fn get_doc(
        &self,
        account_id: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<StoredDoc>, StoreError> {
        if check_segment(account_id).is_err() || check_segment(id).is_err() {
            return Ok(None);
        }
        self.read_doc(&doc_key(account_id, collection, id), id)
    }

    fn list_docs(&self, request: &ListRequest<'_>) -> Result<DocPage, StoreError> {
        let prefix = format!("doc/{}/{}/", request.account_id, request.collection);
        let start = format!("{prefix}{}", request.start.unwrap_or(""));
        let mut page = DocPage::default();
        for item in self.db.range(start.into_bytes()..) {
            let (key, value) = item?;
            let Some(id) = key.strip_prefix(prefix.as_bytes()) else {
                break;
            };
            let doc = StoredDoc {
                id: String::from_utf8_lossy(id).into_owned(),
                body: decode(&value)?,
            };
            if !(request.filter)(&doc) {
                continue;
            }
            if request.limit.is_some_and(|limit| page.docs.len() >= limit) {
                page.next = Some(doc.id);
                break;
            }
            page.docs.push(doc);
        }
        Ok(page)
    }

    fn write_doc<'a>(
        &'a self,
        write: DocWrite<'a>,
    ) -> StoreFuture<'a, Result<StoredDoc, WriteError>> {
        Box::pin(self.write_doc_inner(write))
    }

    fn delete_doc<'a>(
        &'a self,
        account_id: &'a str,
        collection: &'a str,
        id: &'a str,
        if_match: Option<&'a str>,
        request_id: &'a str,
    ) -> StoreFuture<'a, Result<StoredDoc, WriteError>> {
        Box::pin(self.delete_doc_inner(account_id, collection, id, if_match, request_id))
    }

    fn create_account<'a>(
        &'a self,
        name: &'a str,
        realm: Option<&'a str>,
    ) -> StoreFuture<'a, Result<Account, AccountError>> {
        Box::pin(self.create_account_inner(name, realm))
    }

    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.account_by_index(format!("acctname/{}", name.trim().to_lowercase()))
    }

    fn account_count(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for item in self.db.scan_prefix(b"acct/") {
            item?;
            count += 1;
        }
        Ok(count)
    }

    fn add_api_key<'a>(
        &'a self,
        account_id: &'a str,
        key: ApiKeyHash,
    ) -> StoreFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let record = ApiKeyRecord {
                account_id: account_id.to_string(),
                hash: key,
            };
            self.db.insert(
                format!("apikey/{}", record.hash.key_id).as_bytes(),
                encode(&record)?,
            )?;
            self.durable().await?;
            Ok(())
        })
    }

    fn verify_api_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        let Some(key_id) = api_key_id(key) else {
            return Ok(None);
        };
        let Some(bytes) = self
            .db
            .get(format!("apikey/{}", key_id.to_ascii_lowercase()).as_bytes())?
        else {
            return Ok(None);
        };
        let record: ApiKeyRecord = decode(&bytes)?;
        Ok(record.hash.verify(key).then_some(record.account_id))
    }

    fn add_user_credential<'a>(
        &'a self,
        account_id: &'a str,
        credential: UserCredential,
    ) -> StoreFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_segment(account_id)
                .map_err(|_| StoreError::Backend("invalid account id".into()))?;
            self.db.insert(
                format!("user/{account_id}/{}", credential.user_id).as_bytes(),
                encode(&credential)?,
            )?;
            self.durable().await?;
            Ok(())
        })
    }

    fn global_key_owner(
        &self,
        collection: &str,
        key: &UniqueKey,
    ) -> Result<Option<(String, String)>, StoreError> {
        if !key.global {
            return Ok(None);
        }
        Ok(self
            .db
            .get(uniq_key("", collection, key))?
            .and_then(|owner| {
                let owner = String::from_utf8_lossy(&owner);
                owner
                    .split_once('/')
                    .map(|(a, i)| (a.to_string(), i.to_string()))
            }))
    }

    fn verify_user_credentials(
        &self,
        account_id: &str,
        method: DigestMethod,
        digest_hex: &str,
    ) -> Result<Option<UserLogin>, StoreError> {
        if check_segment(account_id).is_err() {
            return Ok(None);
        }
        for item in self
            .db
            .scan_prefix(format!("user/{account_id}/").as_bytes())
        {
            let (_, value) = item?;
            let credential: UserCredential = decode(&value)?;
            if credential.verify(method, digest_hex) {
                return Ok(Some(UserLogin {
                    user_id: credential.user_id,
                }));
            }
        }
        // Users created through the API: each live, enabled `users` document with a login.
        let prefix = format!("doc/{account_id}/{USERS_COLLECTION}/");
        for item in self.db.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item?;
            let body: Map<String, Value> = decode(&value)?;
            if body.get("enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(login) = body.get(LOGIN_FIELD) else {
                continue;
            };
            let Ok(credential) = serde_json::from_value::<UserCredential>(login.clone()) else {
                tracing::warn!(key = %String::from_utf8_lossy(&key), "unreadable user login; skipped");
                continue;
            };
            if credential.verify(method, digest_hex) {
                let user_id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                return Ok(Some(UserLogin { user_id }));
            }
        }
        Ok(None)
    }

    fn signing_key(&self) -> Result<Vec<u8>, StoreError> {
        self.db
            .get(SIGNING_KEY)?
            .map(|k| k.to_vec())
            .ok_or_else(|| StoreError::Corrupt("token signing key is missing".into()))
    }

    fn flush<'a>(&'a self) -> StoreFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.durable().await?;
            Ok(())
        })
    }
    fn check_consistency(&self, account_id: Option<&str>) -> Result<ConsistencyReport, StoreError> {
        self.check_consistency_inner(account_id)
    }
}

/// A live document's facts the consistency check needs after its scan.
struct LiveFacts {
    /// `numbers` and `patterns` of a callflow (sorted, deduplicated), `None` for other
    /// collections.
    routing: Option<(Vec<String>, Vec<String>)>,
    /// Its stored unique-key list, once `keys/` was scanned.
    keys: Option<Vec<UniqueKey>>,
}

type DocAddr = (String, String, String);

/// Splits `prefix/a/b/c...` into `n` segments after the prefix (the last keeps any `/`).
fn key_segments(key: &[u8], n: usize) -> Option<Vec<String>> {
    let key = std::str::from_utf8(key).ok()?;
    let parts: Vec<String> = key.splitn(n + 1, '/').skip(1).map(str::to_string).collect();
    // The last segment (an id, or a key's value) may hold anything; the others may not be empty.
    (parts.len() == n && parts[..n - 1].iter().all(|p| !p.is_empty())).then_some(parts)
}

fn string_list(body: &Map<String, Value>, field: &str) -> Result<Vec<String>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => return Err(format!("`{field}` holds a non-string {item}")),
                }
            }
            out.sort();
            out.dedup();
            Ok(out)
        }
        Some(other) => Err(format!("`{field}` is not a list: {other}")),
    }
}

impl SledStore {
    /// Visits every entry under `prefix` whose key splits into `n` segments after it (and, with
    /// `account`, whose first segment is that account); a key that does not split is reported as a
    /// malformed `what` key instead.
    fn for_each_entry(
        &self,
        prefix: &[u8],
        n: usize,
        what: &str,
        account: Option<&str>,
        problems: &mut Vec<String>,
        mut visit: impl FnMut(
            &[u8],
            Vec<String>,
            sled::IVec,
            &mut Vec<String>,
        ) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.db.scan_prefix(prefix) {
            let (key, value) = item?;
            match key_segments(&key, n) {
                Some(parts) if account.is_some_and(|a| a != parts[0]) => {}
                Some(parts) => visit(&key, parts, value, problems)?,
                None => problems.push(format!(
                    "malformed {what} key {:?}",
                    String::from_utf8_lossy(&key)
                )),
            }
        }
        Ok(())
    }

    fn check_consistency_inner(&self, only: Option<&str>) -> Result<ConsistencyReport, StoreError> {
        let mut report = ConsistencyReport::default();
        let in_scope = |account: &str| only.is_none_or(|a| a == account);
        let mut problems = Vec::new();

        let mut accounts = std::collections::BTreeSet::new();
        for item in self.db.scan_prefix(b"acct/") {
            let (key, value) = item?;
            let id = String::from_utf8_lossy(&key["acct/".len()..]).into_owned();
            if !in_scope(&id) {
                continue;
            }
            match decode::<Account>(&value) {
                Ok(account) if account.id == id => {}
                Ok(account) => problems.push(format!(
                    "account {id}: stored record names id {}",
                    account.id
                )),
                Err(e) => problems.push(format!("account {id}: unreadable: {e}")),
            }
            accounts.insert(id);
        }
        if let Some(account) = only
            && !accounts.contains(account)
        {
            problems.push(format!("account {account}: no such account"));
        }
        report.accounts = accounts.len();

        // Live documents.
        let mut live: HashMap<DocAddr, LiveFacts> = HashMap::new();
        self.for_each_entry(
            b"doc/",
            3,
            "document",
            only,
            &mut problems,
            |_key, parts, value, problems| {
                let (account, collection, id) = (&parts[0], &parts[1], &parts[2]);
                let at = format!("{collection}/{id} (account {account})");
                report.live_documents += 1;
                if !accounts.contains(account.as_str()) {
                    problems.push(format!("{at}: belongs to no account"));
                }
                let body: Map<String, Value> = match decode(&value) {
                    Ok(body) => body,
                    Err(e) => {
                        problems.push(format!("{at}: unreadable: {e}"));
                        return Ok(());
                    }
                };
                if body.get("_id").and_then(Value::as_str) != Some(id.as_str()) {
                    problems.push(format!("{at}: `_id` is {:?}", body.get("_id")));
                }
                let rev_ok = body
                    .get("_rev")
                    .and_then(Value::as_str)
                    .and_then(|r| r.split_once('-'))
                    .is_some_and(|(n, h)| n.parse::<u64>().is_ok_and(|n| n > 0) && !h.is_empty());
                if !rev_ok {
                    problems.push(format!("{at}: bad `_rev` {:?}", body.get("_rev")));
                }
                if body.get("pvt_account_id").and_then(Value::as_str) != Some(account.as_str()) {
                    problems.push(format!(
                        "{at}: `pvt_account_id` is {:?}",
                        body.get("pvt_account_id")
                    ));
                }
                for field in ["pvt_type", "pvt_created", "pvt_modified"] {
                    if body.get(field).is_none() {
                        problems.push(format!("{at}: `{field}` is missing"));
                    }
                }
                if body.get("pvt_deleted").and_then(Value::as_bool) == Some(true) {
                    problems.push(format!("{at}: live document marked deleted"));
                }
                let routing = if collection == ROUTED_COLLECTION {
                    match (
                        string_list(&body, KIND_NUMBERS),
                        string_list(&body, KIND_PATTERNS),
                    ) {
                        (Ok(numbers), Ok(patterns)) => Some((numbers, patterns)),
                        (Err(e), _) | (_, Err(e)) => {
                            problems.push(format!("{at}: {e}"));
                            Some((Vec::new(), Vec::new()))
                        }
                    }
                } else {
                    None
                };
                live.insert(
                    (account.clone(), collection.clone(), id.clone()),
                    LiveFacts {
                        routing,
                        keys: None,
                    },
                );
                Ok(())
            },
        )?;

        // Soft-deleted documents: marked, and never live at the same time.
        self.for_each_entry(
            b"del/",
            3,
            "deleted-document",
            only,
            &mut problems,
            |_key, parts, value, problems| {
                report.deleted_documents += 1;
                let at = format!("{}/{} (account {})", parts[1], parts[2], parts[0]);
                match decode::<Map<String, Value>>(&value) {
                    Ok(body) if body.get("pvt_deleted").and_then(Value::as_bool) == Some(true) => {}
                    Ok(_) => problems.push(format!("{at}: deleted copy lacks `pvt_deleted`")),
                    Err(e) => problems.push(format!("{at}: deleted copy unreadable: {e}")),
                }
                if live.contains_key(&(parts[0].clone(), parts[1].clone(), parts[2].clone())) {
                    problems.push(format!("{at}: both live and deleted"));
                }
                Ok(())
            },
        )?;

        // Each document's key list: its document is live, each key's slot points back at it,
        // and for callflows the list is exactly the document's numbers and patterns.
        self.for_each_entry(
            b"keys/",
            3,
            "key-list",
            only,
            &mut problems,
            |_key, parts, value, problems| {
                let (account, collection, id) = (&parts[0], &parts[1], &parts[2]);
                let at = format!("{collection}/{id} (account {account})");
                let keys: Vec<UniqueKey> = match decode(&value) {
                    Ok(keys) => keys,
                    Err(e) => {
                        problems.push(format!("{at}: key list unreadable: {e}"));
                        return Ok(());
                    }
                };
                let Some(facts) = live.get_mut(&(account.clone(), collection.clone(), id.clone()))
                else {
                    problems.push(format!("{at}: key list of a document that is not live"));
                    return Ok(());
                };
                for k in &keys {
                    let slot = uniq_key(account, collection, k);
                    let expected = owner_tag(account, id, k);
                    match self.db.get(&slot)? {
                        Some(owner) if owner.as_ref() == expected.as_bytes() => {}
                        Some(owner) => problems.push(format!(
                            "{at}: {} {:?} is indexed to {:?}",
                            k.kind,
                            k.value,
                            String::from_utf8_lossy(&owner)
                        )),
                        None => problems.push(format!(
                            "{at}: {} {:?} is missing from the index",
                            k.kind, k.value
                        )),
                    }
                }
                if let Some((numbers, patterns)) = &facts.routing {
                    let (mut indexed_numbers, mut indexed_patterns) = split_routing_keys(&keys);
                    indexed_numbers.sort();
                    indexed_numbers.dedup();
                    indexed_patterns.sort();
                    indexed_patterns.dedup();
                    if &indexed_numbers != numbers {
                        problems.push(format!(
                            "{at}: document numbers {numbers:?} but key list {indexed_numbers:?}"
                        ));
                    }
                    if &indexed_patterns != patterns {
                        problems.push(format!(
                            "{at}: document patterns {patterns:?} but key list {indexed_patterns:?}"
                        ));
                    }
                }
                facts.keys = Some(keys);
                Ok(())
            },
        )?;
        for ((account, collection, id), facts) in &live {
            if facts.keys.is_none() {
                problems.push(format!(
                    "{collection}/{id} (account {account}): live document without a key list"
                ));
            }
        }

        // Every slot points at a live document that lists the key.
        let holds = |live: &HashMap<DocAddr, LiveFacts>, addr: DocAddr, k: &UniqueKey| {
            live.get(&addr)
                .and_then(|f| f.keys.as_ref())
                .is_some_and(|keys| keys.contains(k))
        };
        self.for_each_entry(b"uniq/", 4, "index", only, &mut problems, |_key, parts, owner, problems| {
            report.unique_entries += 1;
            // `uniq/{account}/{collection}/{kind}/{value}`: the value may itself hold `/`.
            let (kind, value) = (parts[2].clone(), parts[3].clone());
            let owner = String::from_utf8_lossy(&owner).into_owned();
            let k = UniqueKey::new(&kind, &value);
            let addr = (parts[0].clone(), parts[1].clone(), owner.clone());
            if !holds(&live, addr, &k) {
                problems.push(format!(
                    "index {kind} {value:?} (account {}, {}) points at {owner}, which is not a live document listing it",
                    parts[0], parts[1]
                ));
            }
            Ok(())
        })?;
        self.for_each_entry(b"guniq/", 3, "global index", None, &mut problems, |key, parts, owner, problems| {
            let owner = String::from_utf8_lossy(&owner).into_owned();
            let Some((account, id)) = owner.split_once('/') else {
                problems.push(format!("global index {key:?}: bad holder {owner:?}"));
                return Ok(());
            };
            if !in_scope(account) {
                return Ok(());
            }
            report.unique_entries += 1;
            let k = UniqueKey::global(&parts[1], &parts[2]);
            let addr = (account.to_string(), parts[0].clone(), id.to_string());
            if !holds(&live, addr, &k) {
                problems.push(format!(
                    "global index {} {:?} ({}) points at {owner}, which is not a live document listing it",
                    parts[1], parts[2], parts[0]
                ));
            }
            Ok(())
        })?;

        // The routing index the engine uses agrees with the callflows.
        let mut per_account: HashMap<&str, (usize, usize)> = HashMap::new();
        for ((account, _, id), facts) in &live {
            let Some((numbers, patterns)) = &facts.routing else {
                continue;
            };
            let counts = per_account.entry(account.as_str()).or_default();
            counts.0 += numbers.len();
            counts.1 += patterns.len();
            for number in numbers {
                let owner = self.routing.number_owner(account, number);
                if owner.as_deref() != Some(id.as_str()) {
                    problems.push(format!(
                        "routing: number {number:?} (account {account}) routes to {owner:?}, not callflow {id}"
                    ));
                }
            }
            for pattern in patterns {
                let owner = self.routing.pattern_owner(account, pattern);
                if owner.as_deref() != Some(id.as_str()) {
                    problems.push(format!(
                        "routing: pattern {pattern:?} (account {account}) routes to {owner:?}, not callflow {id}"
                    ));
                }
            }
        }
        for account in &accounts {
            let expected = per_account
                .get(account.as_str())
                .copied()
                .unwrap_or_default();
            let actual = self.routing.counts(account);
            report.numbers += expected.0;
            report.patterns += expected.1;
            if actual != expected {
                problems.push(format!(
                    "routing: account {account} routes {} numbers and {} patterns, its callflows hold {} and {}",
                    actual.0, actual.1, expected.0, expected.1
                ));
            }
        }
        problems.sort();
        report.problems = problems;
        Ok(report)
    }
}

fn doc_key(account_id: &str, collection: &str, id: &str) -> String {
    format!("doc/{account_id}/{collection}/{id}")
}

fn del_key(account_id: &str, collection: &str, id: &str) -> String {
    format!("del/{account_id}/{collection}/{id}")
}

fn keys_key(account_id: &str, collection: &str, id: &str) -> Vec<u8> {
    format!("keys/{account_id}/{collection}/{id}").into_bytes()
}

fn uniq_key(account_id: &str, collection: &str, key: &UniqueKey) -> Vec<u8> {
    if key.global {
        format!("guniq/{collection}/{}/{}", key.kind, key.value).into_bytes()
    } else {
        format!("uniq/{account_id}/{collection}/{}/{}", key.kind, key.value).into_bytes()
    }
}

/// What a unique-key slot holds: the document id, or `account/id` for a global key.
fn owner_tag(account_id: &str, id: &str, key: &UniqueKey) -> String {
    if key.global {
        format!("{account_id}/{id}")
    } else {
        id.to_string()
    }
}

/// `(account, id)` of a slot's holder.
fn split_owner(account_id: &str, owner: &str, key: &UniqueKey) -> (String, String) {
    match owner.split_once('/') {
        Some((account, id)) if key.global => (account.to_string(), id.to_string()),
        _ => (account_id.to_string(), owner.to_string()),
    }
}

/// Ids and account ids become key segments: they must not contain `/`.
fn check_segment(segment: &str) -> Result<(), WriteError> {
    if util::is_valid_id(segment) {
        Ok(())
    } else {
        Err(WriteError::NotFound)
    }
}

fn check_revision(expected: &str, current: &StoredDoc) -> Result<(), WriteError> {
    let expected = expected.trim();
    let bare = expected.trim_start_matches("W/").trim_matches('"');
    if expected == "*" || bare == current.revision() {
        Ok(())
    } else {
        Err(WriteError::StaleRevision {
            expected: bare.to_string(),
            current: current.revision().to_string(),
        })
    }
}

fn split_routing_keys(keys: &[UniqueKey]) -> (Vec<String>, Vec<String>) {
    let mut numbers = Vec::new();
    let mut patterns = Vec::new();
    for k in keys {
        match k.kind.as_str() {
            KIND_NUMBERS => numbers.push(k.value.clone()),
            KIND_PATTERNS => patterns.push(k.value.clone()),
            _ => {}
        }
    }
    (numbers, patterns)
}

fn content_hash(public: &Map<String, Value>) -> String {
    let bytes = serde_json::to_vec(public).unwrap_or_default();
    hex::encode(Md5::digest(&bytes))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    crate::util::parse_json(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepared(numbers: &[&str]) -> Mutation<'static> {
        let numbers: Vec<String> = numbers.iter().map(|s| s.to_string()).collect();
        Box::new(move |_| {
            let mut public = Map::new();
            public.insert("name".into(), json!("n"));
            public.insert("numbers".into(), json!(numbers));
            Ok(Prepared {
                public,
                unique: numbers
                    .iter()
                    .map(|n| UniqueKey::new(KIND_NUMBERS, n))
                    .collect(),
                private: Map::new(),
            })
        })
    }

    fn write<'a>(id: &'a str, op: WriteOp, numbers: &[&str]) -> DocWrite<'a> {
        DocWrite {
            account_id: "acc",
            collection: ROUTED_COLLECTION,
            pvt_type: "callflow",
            id,
            op,
            if_match: None,
            request_id: "r",
            mutate: prepared(numbers),
        }
    }

    #[tokio::test]
    async fn purge_removes_only_deletions_older_than_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for id in ["old", "fresh", "live"] {
            store
                .write_doc(write(id, WriteOp::Create, &[]))
                .await
                .unwrap();
        }
        for id in ["old", "fresh"] {
            store
                .delete_doc("acc", ROUTED_COLLECTION, id, None, "r")
                .await
                .unwrap();
        }
        // Back-date the deletion of "old" by two days.
        let key = del_key("acc", ROUTED_COLLECTION, "old");
        let mut body: Value = decode(&store.db.get(&key).unwrap().unwrap()).unwrap();
        body["pvt_modified"] = json!(util::gregorian_now() - 2 * 86_400);
        store.db.insert(&key, encode(&body).unwrap()).unwrap();
        store
            .db
            .insert(b"del/acc/callflows/garbled", b"{".to_vec())
            .unwrap();

        let day = Duration::from_secs(86_400);
        assert_eq!(store.purge_deleted(day).await.unwrap(), 1);
        assert!(store.db.get(&key).unwrap().is_none());
        let fresh = del_key("acc", ROUTED_COLLECTION, "fresh");
        assert!(store.db.get(&fresh).unwrap().is_some());
        assert!(
            store
                .db
                .get(b"del/acc/callflows/garbled")
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .get_doc("acc", ROUTED_COLLECTION, "live")
                .unwrap()
                .is_some()
        );
        // A second pass finds nothing more; a zero retention takes every readable deletion.
        assert_eq!(store.purge_deleted(day).await.unwrap(), 0);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(store.purge_deleted(Duration::ZERO).await.unwrap(), 1);
        assert!(store.db.get(&fresh).unwrap().is_none());
        store.db.remove(b"del/acc/callflows/garbled").unwrap();
        assert_eq!(store.check_consistency(None).unwrap().deleted_documents, 0);
        // A purged id can be created again.
        store
            .write_doc(write("old", WriteOp::Create, &["3000"]))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn write_unique_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let doc = store
                .write_doc(write("one", WriteOp::Create, &["1000"]))
                .await
                .unwrap();
            assert!(doc.revision().starts_with("1-"));
            assert!(matches!(
                store.write_doc(write("two", WriteOp::Create, &["1000"])).await,
                Err(WriteError::Duplicate(d)) if d[0].owner_id == "one"
            ));
            store
                .write_doc(write("two", WriteOp::Create, &["2000"]))
                .await
                .unwrap();
            let doc = store
                .write_doc(write("one", WriteOp::Update, &["1001"]))
                .await
                .unwrap();
            assert!(doc.revision().starts_with("2-"));
            assert!(store.routing().lookup("acc", "1000").is_none());
            store
                .write_doc(write("three", WriteOp::Create, &["1000"]))
                .await
                .unwrap();
            store
                .delete_doc("acc", ROUTED_COLLECTION, "two", None, "r")
                .await
                .unwrap();
            assert!(
                store
                    .get_doc("acc", ROUTED_COLLECTION, "two")
                    .unwrap()
                    .is_none()
            );
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            &*store.routing().lookup("acc", "1000").unwrap().callflow_id,
            "three"
        );
        assert_eq!(
            &*store.routing().lookup("acc", "1001").unwrap().callflow_id,
            "one"
        );
        assert!(store.routing().lookup("acc", "2000").is_none());
        let page = store
            .list_docs(&ListRequest {
                account_id: "acc",
                collection: ROUTED_COLLECTION,
                start: None,
                limit: Some(1),
                filter: &|_| true,
            })
            .unwrap();
        assert_eq!(page.docs[0].id, "one");
        assert_eq!(page.next.as_deref(), Some("three"));
    }

    fn keyed<'a>(
        account: &'a str,
        id: &'a str,
        op: WriteOp,
        key: UniqueKey,
        private: Map<String, Value>,
    ) -> DocWrite<'a> {
        DocWrite {
            account_id: account,
            collection: "devices",
            pvt_type: "device",
            id,
            op,
            if_match: None,
            request_id: "r",
            mutate: Box::new(move |_| {
                Ok(Prepared {
                    public: json!({"name": id}).as_object().cloned().unwrap_or_default(),
                    unique: vec![key],
                    private,
                })
            }),
        }
    }

    #[tokio::test]
    async fn global_keys_span_accounts_and_private_fields_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = UniqueKey::global("sip.username", "2001@lab.test");
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut private = Map::new();
            private.insert("pvt_secret".into(), json!("s"));
            private.insert("not_private".into(), json!("dropped"));
            let doc = store
                .write_doc(keyed("acc1", "d1", WriteOp::Create, key.clone(), private))
                .await
                .unwrap();
            assert_eq!(doc.body["pvt_secret"], "s");
            assert!(doc.body.get("not_private").is_none());
            assert!(doc.public().get("pvt_secret").is_none());
            // Another account: refused, without naming the holder.
            match store
                .write_doc(keyed(
                    "acc2",
                    "d2",
                    WriteOp::Create,
                    key.clone(),
                    Map::new(),
                ))
                .await
            {
                Err(WriteError::Duplicate(d)) => {
                    assert!(d[0].other_account);
                    assert!(d[0].owner_id.is_empty() && d[0].owner_name.is_none());
                }
                other => panic!("expected a duplicate, got {other:?}"),
            }
            // The holder itself may rewrite it.
            store
                .write_doc(keyed(
                    "acc1",
                    "d1",
                    WriteOp::Update,
                    key.clone(),
                    Map::new(),
                ))
                .await
                .unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.global_key_owner("devices", &key).unwrap(),
            Some(("acc1".to_string(), "d1".to_string()))
        );
        assert_eq!(
            store
                .global_key_owner("devices", &UniqueKey::new("sip.username", "2001@lab.test"))
                .unwrap(),
            None,
            "account-scoped keys are not global"
        );
        store
            .delete_doc("acc1", "devices", "d1", None, "r")
            .await
            .unwrap();
        assert_eq!(store.global_key_owner("devices", &key).unwrap(), None);
        store
            .write_doc(keyed(
                "acc2",
                "d2",
                WriteOp::Create,
                key.clone(),
                Map::new(),
            ))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn consistency_check_finds_index_disagreements() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let account = store.create_account("acme", None).await.unwrap();
        let acc = account.id.as_str();
        let mut w = write("one", WriteOp::Create, &["1000", "1001"]);
        w.account_id = acc;
        store.write_doc(w).await.unwrap();
        let mut w = write("two", WriteOp::Create, &["2000"]);
        w.account_id = acc;
        store.write_doc(w).await.unwrap();
        store
            .delete_doc(acc, ROUTED_COLLECTION, "two", None, "r")
            .await
            .unwrap();
        let report = store.check_consistency(None).unwrap();
        assert!(report.is_consistent(), "{report}");
        assert_eq!(
            (
                report.live_documents,
                report.deleted_documents,
                report.numbers
            ),
            (1, 1, 2)
        );
        assert!(store.check_consistency(Some(acc)).unwrap().is_consistent());
        assert!(
            !store
                .check_consistency(Some("nobody"))
                .unwrap()
                .is_consistent()
        );

        // A number missing from the index, a stray slot, a live+deleted id.
        let one = UniqueKey::new(KIND_NUMBERS, "1001");
        store
            .db
            .remove(uniq_key(acc, ROUTED_COLLECTION, &one))
            .unwrap();
        let stray = UniqueKey::new(KIND_PATTERNS, "^9/(\\d+)$");
        store
            .db
            .insert(uniq_key(acc, ROUTED_COLLECTION, &stray), b"ghost".to_vec())
            .unwrap();
        let deleted = store
            .db
            .get(del_key(acc, ROUTED_COLLECTION, "two"))
            .unwrap()
            .unwrap();
        store
            .db
            .insert(doc_key(acc, ROUTED_COLLECTION, "two").as_bytes(), deleted)
            .unwrap();
        store.db.insert(b"keys/truncated", b"[]".to_vec()).unwrap();
        let text = store.check_consistency(None).unwrap().to_string();
        assert!(
            text.contains("malformed key-list key \"keys/truncated\""),
            "{text}"
        );
        let report = store.check_consistency(Some(acc)).unwrap();
        let text = report.to_string();
        assert!(
            text.contains("\"1001\" is missing from the index"),
            "{text}"
        );
        assert!(text.contains("points at ghost"), "{text}");
        assert!(text.contains("both live and deleted"), "{text}");
        assert!(text.contains("live document marked deleted"), "{text}");
        assert!(text.contains("live document without a key list"), "{text}");
        assert!(text.contains("routing: number \"2000\""), "{text}");
    }

    #[tokio::test]
    async fn stale_if_match_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let doc = store
            .write_doc(write("one", WriteOp::Create, &["1"]))
            .await
            .unwrap();
        let mut w = write("one", WriteOp::Update, &["1"]);
        w.if_match = Some("1-stale");
        assert!(matches!(
            store.write_doc(w).await,
            Err(WriteError::StaleRevision { .. })
        ));
        let rev = format!("\"{}\"", doc.revision());
        let mut w = write("one", WriteOp::Update, &["1"]);
        w.if_match = Some(&rev);
        store.write_doc(w).await.unwrap();
    }

    #[tokio::test]
    async fn accounts_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let account = store
            .create_account("Acme", Some("acme.test"))
            .await
            .unwrap();
        assert!(matches!(
            store.create_account("acme", None).await,
            Err(AccountError::NameTaken(_))
        ));
        assert_eq!(
            store.account_by_realm("ACME.test").unwrap().unwrap().id,
            account.id
        );
        assert_eq!(
            store.account_by_name("ACME").unwrap().unwrap().id,
            account.id
        );
        let key = crate::auth::secrets::new_api_key();
        store
            .add_api_key(&account.id, key.hash.clone())
            .await
            .unwrap();
        assert_eq!(
            store.verify_api_key(&key.key).unwrap(),
            Some(account.id.clone())
        );
        let mut wrong = key.key.clone();
        wrong.replace_range(60.., "0000");
        assert_eq!(store.verify_api_key(&wrong).unwrap(), None);
        assert_eq!(store.account_count().unwrap(), 1);
    }
}

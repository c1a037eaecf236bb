//! Starting and stopping the whole service: store, HTTP API and ESL listener.
//!
//! `callflowd serve` and the integration tests use the same [`start`], so tests exercise exactly
//! what production runs. With an empty data directory, `start` creates the first account and an
//! API key and hands them back once in [`RunningService::bootstrap`] (only their hash is stored).

use crate::api::{self, ApiSettings, AppState};
use crate::auth::secrets::new_api_key;
use crate::config::Config;
use crate::engine::{self, EngineContext};
use crate::store::{AccountError, SledStore, Store, StoreError, StoreRead};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Name of the account created on first start.
pub const INITIAL_ACCOUNT: &str = "admin";
/// Realm of the account created on first start.
pub const INITIAL_REALM: &str = "callflowd.local";

/// Extra time, after the engine's `shutdown_grace`, for handing the remaining calls back to the
/// dialplan before the store is flushed and the process exits anyway.
pub const SHUTDOWN_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// How often soft-deleted documents past `deleted_retention` are purged (the first pass runs
/// this long after start too, so a restart loop does not rescan the table each time).
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Opening or using the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Creating the first account failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The API server stopped with an I/O error.
    #[error("API server failed: {0}")]
    Serve(std::io::Error),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::api::server::TlsError),
}

/// The credentials created on first start; shown once, never stored in clear.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The new account's id.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// A new API key for it (64 hex).
    pub api_key: String,
}

/// A started service. Drop does not stop it; call [`RunningService::shutdown`].
pub struct RunningService {
    /// Where the HTTP API listens (the real port when configured with port 0).
    pub api_addr: SocketAddr,
    /// Where the ESL listener listens.
    pub esl_addr: SocketAddr,
    /// The store (the API and the engine share it).
    pub store: Arc<SledStore>,
    /// The engine context (config, stats, store read side).
    pub engine: Arc<EngineContext>,
    /// First-start credentials, when this start created them.
    pub bootstrap: Option<Bootstrap>,
    /// Whether the API serves HTTPS.
    pub tls: bool,
    shutdown_tx: watch::Sender<bool>,
    api_task: JoinHandle<std::io::Result<()>>,
    esl_task: JoinHandle<()>,
    purge_task: JoinHandle<()>,
}

/// Opens the store (creating the first account when there is none), binds both listeners and
/// starts serving.
pub async fn start(config: Config) -> Result<RunningService, ServiceError> {
    // A bad certificate is reported before anything is created or bound.
    let server_options = api::server::ServerOptions::from_config(&config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StoreError::Backend(format!(
            "cannot create data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let store = Arc::new(SledStore::open_with_cache(
        &config.data_dir,
        config.db_cache_bytes(),
    )?);
    let bootstrap = bootstrap_if_empty(store.as_ref()).await?;

    crate::modules::warm_up();
    let engine_ctx = EngineContext::new(config.engine(), store.clone() as Arc<dyn StoreRead>);
    let esl_listener = engine::listener::bind(&engine_ctx)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: config.esl_listen,
            source,
        })?;
    let esl_addr = esl_listener
        .local_addr()
        .map_err(|source| ServiceError::Bind {
            addr: config.esl_listen,
            source,
        })?;
    let api_listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServiceError::Bind {
                addr: config.listen,
                source,
            })?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|source| ServiceError::Bind {
            addr: config.listen,
            source,
        })?;

    let state = AppState::new(store.clone() as Arc<dyn Store>, ApiSettings::from(&config))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let esl_task = tokio::spawn(engine::listener::serve(
        esl_listener,
        engine_ctx.clone(),
        shutdown_rx.clone(),
    ));
    let purge_task = tokio::spawn(purge_deleted_periodically(
        store.clone(),
        config.deleted_retention,
        shutdown_rx.clone(),
    ));
    let mut api_shutdown = shutdown_rx;
    let tls = server_options.tls.is_some();
    let api_task = tokio::spawn(api::serve_on(
        api_listener,
        state,
        server_options,
        async move {
            let _ = api_shutdown.wait_for(|stop| *stop).await;
        },
    ));
    tracing::info!(%api_addr, %esl_addr, tls, data_dir = %config.data_dir.display(), "callflowd started");
    Ok(RunningService {
        api_addr,
        esl_addr,
        store,
        engine: engine_ctx,
        bootstrap,
        tls,
        shutdown_tx,
        api_task,
        esl_task,
        purge_task,
    })
}

/// Runs [`SledStore::purge_deleted`] every [`PURGE_EVERY`] until shutdown; a zero retention keeps
/// soft-deleted documents forever. A failed pass is logged and retried at the next tick.
async fn purge_deleted_periodically(
    store: Arc<SledStore>,
    retention: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if retention.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(PURGE_EVERY) => {}
        }
        match store.purge_deleted(retention).await {
            Ok(0) => {}
            Ok(purged) => {
                metrics::counter!("callflowd_deleted_documents_purged_total")
                    .increment(purged as u64);
                tracing::info!(purged, ?retention, "purged soft-deleted documents");
            }
            Err(error) => tracing::warn!(%error, "purging soft-deleted documents failed"),
        }
    }
}

/// Creates the first account and API key when the store has no account yet.
pub async fn bootstrap_if_empty(store: &dyn Store) -> Result<Option<Bootstrap>, ServiceError> {
    if store.account_count()? > 0 {
        return Ok(None);
    }
    let account = store
        .create_account(INITIAL_ACCOUNT, Some(INITIAL_REALM))
        .await?;
    let key = new_api_key();
    store.add_api_key(&account.id, key.hash).await?;
    Ok(Some(Bootstrap {
        account_id: account.id,
        account_name: account.name,
        api_key: key.key,
    }))
}

impl RunningService {
    /// The API's base URL (`http://127.0.0.1:PORT`, `https://` with TLS).
    pub fn api_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.api_addr)
    }

    /// A receiver that flips to `true` when shutdown starts (for tasks tied to the service).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    /// Stops accepting, lets requests and calls in flight finish, then flushes the store.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let _ = self.shutdown_tx.send(true);
        let api_result = self.api_task.await;
        // The listener lets calls finish for `shutdown_grace`, then hands the rest back to the
        // dialplan; the extra margin covers the hand-back itself.
        let limit = self.engine.config.shutdown_grace + SHUTDOWN_MARGIN;
        if tokio::time::timeout(limit, self.esl_task).await.is_err() {
            tracing::warn!("ESL listener did not stop within {limit:?}; stopping anyway");
        }
        let _ = self.purge_task.await;
        self.store.flush().await?;
        match api_result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServiceError::Serve(e)),
            Err(join) => Err(ServiceError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}

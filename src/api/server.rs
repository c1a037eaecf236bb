//! The HTTP server under the API: the accept loop, per-connection limits and TLS.
//!
//! `axum::serve` has no knobs for slow clients, so the API runs its own loop over hyper's
//! HTTP/1 connection builder:
//!
//! - **Connections**: at most [`ServerOptions::max_connections`] at once. When they are all
//!   taken the loop stops accepting (new clients wait in the kernel's backlog) until one closes.
//! - **Request heads**: a client has [`ServerOptions::header_read_timeout`] to send the request
//!   line and headers (the same limit bounds an idle keep-alive connection and the TLS
//!   handshake); then the connection is closed. Heads larger than
//!   [`ServerOptions::max_header_bytes`] get hyper's bare `431` and a close.
//! - **Request bodies**: every body is wrapped in a [`DeadlineBody`] that fails once
//!   [`ServerOptions::body_timeout`] has passed since the request head arrived and no data is
//!   waiting; handlers turn that into a `408` envelope and hyper closes the connection.
//! - **TLS**: with a certificate ([`load_tls`]) every connection is a rustls (ring) server
//!   session, HTTP/1.1 over TLS 1.2/1.3; plain HTTP on that port fails the handshake.
//!
//! Each request gets the peer address as `ConnectInfo<SocketAddr>` (the directory's allow-list
//! and the login rate limit read it). Shutdown stops accepting, lets requests in flight finish
//! and closes idle connections.

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Smallest head limit hyper accepts (its minimum read buffer).
pub const MIN_HEADER_BYTES: usize = 8192;

/// How the API server treats connections.
#[derive(Clone)]
pub struct ServerOptions {
    /// Time allowed for a request head, a TLS handshake, or between keep-alive requests.
    pub header_read_timeout: Duration,
    /// Time allowed for a whole request body, from the request head.
    pub body_timeout: Duration,
    /// Largest request head (431 beyond).
    pub max_header_bytes: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Serve HTTPS with this acceptor.
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        let config = crate::config::Config::default();
        ServerOptions {
            header_read_timeout: config.header_read_timeout,
            body_timeout: config.body_timeout,
            max_header_bytes: config.max_header_bytes,
            max_connections: config.max_connections,
            tls: None,
        }
    }
}

impl ServerOptions {
    /// The options of `config`, loading its certificate and key when it names them.
    pub fn from_config(config: &crate::config::Config) -> Result<Self, TlsError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
            _ => None,
        };
        Ok(ServerOptions {
            header_read_timeout: config.header_read_timeout,
            body_timeout: config.body_timeout,
            max_header_bytes: config.max_header_bytes.max(MIN_HEADER_BYTES),
            max_connections: config.max_connections.max(1),
            tls,
        })
    }
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// Reads a PEM certificate chain and private key into a rustls acceptor (ring provider,
/// TLS 1.2 and 1.3, ALPN `http/1.1`).
pub fn load_tls(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("certificate {}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "certificate {}: no CERTIFICATE block",
            cert_path.display()
        )));
    }
    // The key file's contents never appear in the error, only its path.
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| TlsError(format!("private key {}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError(format!(
                "{} and {} do not make a usable pair: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` with `options` until `shutdown` resolves, then waits for the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = Arc::new(options);
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let options = options.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            match options.tls.clone() {
                None => connection(stream, peer, router, &options, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(options.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => connection(tls, peer, router, &options, watcher).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept errors are about one connection (reset before accept) or about resources (too many
/// open files): neither should stop the server; the latter gets a pause so the loop does not
/// spin.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionAborted
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionRefused => {}
        _ => {
            tracing::warn!(%error, "accepting an API connection failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    options: &ServerOptions,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let body_timeout = options.body_timeout;
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let body = Body::new(DeadlineBody::new(body, body_timeout));
            router.oneshot(Request::from_parts(parts, body)).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_header_bytes)
        .max_header_size(options.max_header_bytes);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(connection).await {
        // Timeouts, resets, malformed requests: the client's problem, not ours.
        tracing::debug!(%peer, %error, "API connection ended with an error");
    }
}

/// The error a request body yields once its time is up.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body took longer than allowed")]
pub struct BodyTimedOut;

/// Whether `error` (or anything in its source chain) is a [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// A request body with a deadline counted from the request head: data already received is
/// always handed over, but once the deadline has passed, waiting for more is an error
/// ([`BodyTimedOut`]). The timer is only armed when the body actually has to wait.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    /// Wraps `inner`; it must be read within `timeout` from now.
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Instant::now() + timeout,
            sleep: None,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

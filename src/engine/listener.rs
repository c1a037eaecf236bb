//! Accepts FreeSWITCH's outbound `socket` connections: one task per call.
//!
//! Peers outside the allow-list are closed before a byte is read. Each accepted connection gets
//! TCP_NODELAY (a command is one write; Nagle + delayed ACK would add ~40 ms per command and cost
//! FreeSWITCH CPU) and its own task; one call's socket error ends that call only.

use crate::engine::EngineContext;
use crate::engine::session::{SessionOptions, run_session};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Binds the listener socket (separate from `serve` so tests can bind port 0 first).
///
/// The accept queue is made as deep as the kernel allows (`somaxconn`): a burst of calls (a
/// FreeSWITCH restart re-offering hundreds at once) must wait in the queue, not overflow it —
/// an overflowed queue leaves the switch's side "connected" with nobody answering.
pub async fn bind(ctx: &EngineContext) -> std::io::Result<TcpListener> {
    let addr = ctx.config.listen;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Requested accept-queue depth (the kernel caps it at `net.core.somaxconn`).
pub const ACCEPT_BACKLOG: u32 = 65_535;

/// Accepts connections until `shutdown` flips to true, then waits for calls in flight.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<EngineContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut calls = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if !ctx.config.allowed_peers.iter().any(|net| net.contains(peer.ip())) {
                    ctx.stats.peers_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, "ESL peer not in the allow-list; closing");
                    drop(stream);
                    continue;
                }
                let ctx = ctx.clone();
                calls.spawn(async move {
                    run_session(stream, ctx, SessionOptions::default()).await;
                });
            }
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let grace = ctx.config.shutdown_grace;
    tracing::info!(
        in_flight = calls.len(),
        ?grace,
        "ESL listener stopped accepting; letting calls in flight finish"
    );
    let finished =
        tokio::time::timeout(grace, async { while calls.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            remaining = calls.len(),
            "grace period over: handing the remaining calls back to the dialplan"
        );
        let _ = ctx.handback.send(true);
        // Sessions close their sockets at once; do not wait forever on a stuck peer.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while calls.join_next().await.is_some() {}
        })
        .await;
        if closed.is_err() {
            tracing::error!(
                remaining = calls.len(),
                "sessions did not close; aborting them"
            );
            calls.abort_all();
        }
    }
}

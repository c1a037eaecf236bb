//! The call engine: one outbound ESL connection = one call = one task.
//!
//! `listener` accepts FreeSWITCH's `socket` connections, `session` sets each one up (connect,
//! myevents, linger, resume), picks the account and the callflow, and hands the call to the
//! `executor`, which walks the flow with Kazoo's continue/branch/stop semantics, calling
//! `modules` that speak to FreeSWITCH through the [`call::Call`] handle.

pub mod call;
pub mod executor;
pub mod listener;
pub mod metaflow;
pub mod metaflow_runner;
#[cfg(test)]
mod metaflow_tests;
pub mod session;
pub mod simulate;
pub mod snapshot;
#[cfg(test)]
pub mod testkit;

use crate::store::StoreRead;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Engine settings (a slice of the service configuration).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where FreeSWITCH's `socket` app connects.
    pub listen: SocketAddr,
    /// Peers allowed to connect; anything else is closed at once.
    pub allowed_peers: Vec<IpNet>,
    /// Longest wait for a command reply or a short app's completion.
    pub command_timeout: Duration,
    /// Watchdog: no call stays under our control longer than this.
    pub call_deadline: Duration,
    /// Kazoo's `max_branch_count`.
    pub max_branches: u32,
    /// Most modules one call may run (runaway protection).
    pub max_steps: u32,
    /// `linger` seconds asked of FreeSWITCH, so HANGUP_COMPLETE reaches us after a hangup.
    pub linger: Duration,
    /// Account used when the channel names none and no realm matches.
    pub default_account: Option<String>,
    /// Longest wait for the `connect` reply and the set-up commands.
    pub setup_timeout: Duration,
    /// On shutdown, how long calls in flight may go on before they are handed back to the
    /// dialplan.
    pub shutdown_grace: Duration,
    /// Absolute data directory, where uploaded media live (`None`: media ids are not resolved).
    pub data_dir: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8084)),
            allowed_peers: vec![IpNet::loopback_v4(), IpNet::loopback_v6()],
            command_timeout: Duration::from_secs(15),
            call_deadline: Duration::from_secs(4 * 3600),
            max_branches: 50,
            max_steps: 1000,
            linger: Duration::from_secs(10),
            default_account: None,
            setup_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            data_dir: None,
        }
    }
}

/// An address prefix for the peer allow-list (`127.0.0.0/8`, `10.1.2.3`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// 127.0.0.0/8.
    pub fn loopback_v4() -> Self {
        IpNet {
            addr: IpAddr::from([127, 0, 0, 0]),
            prefix: 8,
        }
    }

    /// ::1/128.
    pub fn loopback_v6() -> Self {
        IpNet {
            addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            prefix: 128,
        }
    }

    /// Whether `ip` falls inside this prefix (IPv4-mapped IPv6 peers are compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            other => other,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("bad address in {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|_| format!("bad prefix in {s:?}"))?,
            None => max,
        };
        if prefix > max {
            return Err(format!("prefix too long in {s:?}"));
        }
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Live counters the tests and the metrics endpoint read.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Calls currently held (session tasks alive).
    pub active_calls: AtomicUsize,
    /// Calls accepted since start.
    pub calls_started: AtomicU64,
    /// Calls whose session finished.
    pub calls_finished: AtomicU64,
    /// Connections refused by the allow-list.
    pub peers_refused: AtomicU64,
}

impl EngineStats {
    /// Calls currently in flight.
    pub fn active(&self) -> usize {
        self.active_calls.load(Ordering::Relaxed)
    }
}

/// Most webhook deliveries (with their retries) in flight at once.
pub const WEBHOOKS_IN_FLIGHT: usize = 1024;

/// What every call shares: configuration, the store's read side, counters.
pub struct EngineContext {
    /// Engine settings.
    pub config: EngineConfig,
    /// Accounts, documents and the routing index.
    pub store: Arc<dyn StoreRead>,
    /// Live counters.
    pub stats: EngineStats,
    /// HTTP client for pivot and webhooks (connection pooling shared by all calls).
    pub http: reqwest::Client,
    /// Bounds webhooks in flight so a dead receiver cannot pile up tasks.
    pub webhook_slots: Arc<tokio::sync::Semaphore>,
    /// Flipped when the shutdown grace period ends: every call still held goes back to the
    /// dialplan.
    pub handback: tokio::sync::watch::Sender<bool>,
}

impl EngineContext {
    /// Builds the shared context.
    pub fn new(config: EngineConfig, store: Arc<dyn StoreRead>) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("callflowd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(32)
            .build()
            .unwrap_or_else(|error| {
                tracing::error!(%error, "HTTP client with custom settings failed; using defaults");
                reqwest::Client::new()
            });
        Arc::new(EngineContext {
            config,
            store,
            stats: EngineStats::default(),
            http,
            webhook_slots: Arc::new(tokio::sync::Semaphore::new(WEBHOOKS_IN_FLIGHT)),
            handback: tokio::sync::watch::Sender::new(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_prefixes() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(IpNet::loopback_v4().contains("127.0.0.1".parse().unwrap()));
        assert!(IpNet::loopback_v4().contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(IpNet::loopback_v6().contains("::1".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<IpNet>().is_err());
        let any: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("8.8.8.8".parse().unwrap()));
    }
}

//! Logging (tracing) and Prometheus metrics.
//!
//! Logs go to stderr so that stdout stays for what a command prints on purpose (the first-start
//! credentials, `validate` results, ids from `account create`). Metrics use the `metrics` facade;
//! the Prometheus recorder is installed once per process and rendered by `GET /metrics`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines with colours on a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the global tracing subscriber. `RUST_LOG` overrides `level` when set. Calling it twice
/// (tests start several services in one process) is harmless: the first subscriber stays.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often the recorder's histograms are drained when nobody scrapes `/metrics`.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide Prometheus handle, installing the recorder on first use. If some other code
/// already installed a global recorder, a detached one is returned (its output is then empty)
/// rather than failing the service.
///
/// A recorder installed this way keeps every histogram sample until upkeep drains it (a scrape
/// does, but nothing guarantees a scraper), so a thread runs upkeep every few seconds: without it
/// each API request and call would grow the heap for good.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "a metrics recorder is already installed; /metrics will be empty");
                    PrometheusBuilder::new().build_recorder().handle()
                });
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the metrics upkeep thread; histograms drain only when scraped");
            }
            handle
        })
        .clone()
}

/// Counts one HTTP request by matched route (never the raw path: ids would explode cardinality).
pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("callflowd_http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "callflowd_http_request_duration_seconds",
        "method" => method.to_string(),
        "route" => route.to_string()
    )
    .record(elapsed.as_secs_f64());
}

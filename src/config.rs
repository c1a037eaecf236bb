//! Settings: defaults < TOML file < `CALLFLOWD_*` env < flags.
//!
//! clap already gives "flag beats env" for every [`ConfigArgs`] field (each one is an
//! `Option` with an `env = "CALLFLOWD_..."`), so layering is: take the clap value when present,
//! else the TOML file's, else the default. The TOML file is named by `--config` /
//! `CALLFLOWD_CONFIG` and is optional; its keys are the long flag names with `_` for `-`.

use crate::engine::{EngineConfig, IpNet};
use crate::telemetry::LogFormat;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest request body the API reads (the limit; larger -> 413).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Largest request head (request line + headers) the API reads (431 beyond).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most HTTP connections the API holds open at once (further clients wait in the backlog).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Failed logins allowed per source address and window before 429.
pub const DEFAULT_LOGIN_MAX_FAILURES: u32 = 10;

/// Why the configuration could not be assembled; reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML file is not valid or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml said.
        message: String,
    },
    /// A value (from any layer) does not parse.
    #[error("invalid value for {key}: {message}")]
    Value {
        /// The setting.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// The complete, resolved service configuration. Its `Debug` form hides the directory password.
#[derive(Clone)]
pub struct Config {
    /// HTTP API address (Kazoo's port 8000 by convention).
    pub listen: SocketAddr,
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// sled's page cache, MiB.
    pub db_cache_mb: u64,
    /// How long soft-deleted documents are kept before the hourly purge removes them (zero: kept
    /// forever). Kazoo's periodic cleanup does the same for its soft deletes.
    pub deleted_retention: Duration,
    /// Lifetime of tokens issued by `api_auth` / `user_auth` (Kazoo: 3600 s).
    pub token_lifetime: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// `tracing` filter directive (`info`, `callflowd=debug,tower_http=info`); `RUST_LOG` wins.
    pub log_level: String,
    /// The envelope's `node` field (Kazoo reports the Erlang node that answered).
    pub node: String,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Where FreeSWITCH's `socket` app connects.
    pub esl_listen: SocketAddr,
    /// Peers allowed on the ESL port.
    pub esl_allowed_peers: Vec<IpNet>,
    /// Longest wait for an ESL command reply.
    pub command_timeout: Duration,
    /// Watchdog for one call.
    pub call_deadline: Duration,
    /// Account used for calls that name none and match no realm.
    pub default_account: Option<String>,
    /// `linger` asked of FreeSWITCH.
    pub linger: Duration,
    /// On shutdown, how long calls in flight may go on before being handed back to the dialplan.
    pub shutdown_grace: Duration,
    /// Basic-auth user FreeSWITCH's mod_xml_curl sends to `POST /directory` (`gateway-credentials`
    /// user); the endpoint is off unless both this and the password are set.
    pub directory_username: Option<String>,
    /// Basic-auth password for `POST /directory`.
    pub directory_password: Option<String>,
    /// Peers allowed to call `POST /directory`.
    pub directory_allowed_peers: Vec<IpNet>,
    /// `user_context` the directory gives registered devices: the dialplan context their calls
    /// run in (`callflowd` for `fs-config/lab/`).
    pub directory_user_context: String,
    /// Largest media upload (`PUT .../media/{id}/raw`), 413 beyond.
    pub media_max_bytes: usize,
    /// PEM certificate chain: with [`Config::tls_key`], the API serves HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of [`Config::tls_cert`].
    pub tls_key: Option<PathBuf>,
    /// Longest a client may take to send a request head (also the idle keep-alive limit and the
    /// TLS handshake limit); the connection is closed after it.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body, counted from the request head (408).
    pub body_timeout: Duration,
    /// Largest request head, request line and headers together (431 beyond).
    pub max_header_bytes: usize,
    /// Most API connections open at once.
    pub max_connections: usize,
    /// Failed logins (`api_auth`, `user_auth`) allowed per source address within
    /// [`Config::login_failure_window`] before 429; 0 turns the limit off.
    pub login_max_failures: u32,
    /// The window of [`Config::login_max_failures`] (the allowance refills evenly over it).
    pub login_failure_window: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("db_cache_mb", &self.db_cache_mb)
            .field("deleted_retention", &self.deleted_retention)
            .field("token_lifetime", &self.token_lifetime)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("node", &self.node)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("esl_listen", &self.esl_listen)
            .field("esl_allowed_peers", &self.esl_allowed_peers)
            .field("command_timeout", &self.command_timeout)
            .field("call_deadline", &self.call_deadline)
            .field("default_account", &self.default_account)
            .field("linger", &self.linger)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("directory_username", &self.directory_username)
            .field(
                "directory_password",
                &self.directory_password.as_ref().map(|_| "<redacted>"),
            )
            .field("directory_allowed_peers", &self.directory_allowed_peers)
            .field("directory_user_context", &self.directory_user_context)
            .field("media_max_bytes", &self.media_max_bytes)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_connections", &self.max_connections)
            .field("login_max_failures", &self.login_max_failures)
            .field("login_failure_window", &self.login_failure_window)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("./data"),
            db_cache_mb: crate::store::sled_store::DEFAULT_CACHE_BYTES / (1024 * 1024),
            deleted_retention: Duration::from_secs(30 * 86_400),
            token_lifetime: Duration::from_secs(3600),
            log_format: LogFormat::Human,
            // freeswitch-esl-tokio logs every connection close at info: two lines per call.
            log_level: "info,freeswitch_esl_tokio=warn".to_string(),
            node: default_node(),
            max_body_bytes: DEFAULT_MAX_BODY,
            esl_listen: engine.listen,
            esl_allowed_peers: engine.allowed_peers,
            command_timeout: engine.command_timeout,
            call_deadline: engine.call_deadline,
            default_account: engine.default_account,
            linger: engine.linger,
            shutdown_grace: engine.shutdown_grace,
            directory_username: None,
            directory_password: None,
            directory_allowed_peers: vec![IpNet::loopback_v4(), IpNet::loopback_v6()],
            directory_user_context: "default".to_string(),
            media_max_bytes: crate::documents::media::DEFAULT_MAX_MEDIA_BYTES,
            tls_cert: None,
            tls_key: None,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            login_max_failures: DEFAULT_LOGIN_MAX_FAILURES,
            login_failure_window: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// sled's page cache in bytes.
    pub fn db_cache_bytes(&self) -> u64 {
        self.db_cache_mb.saturating_mul(1024 * 1024)
    }

    /// A configuration for tests and embedding: everything on 127.0.0.1 port 0 (the OS picks),
    /// data in `data_dir`.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            esl_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            ..Config::default()
        }
    }

    /// The engine's slice of the configuration.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            listen: self.esl_listen,
            allowed_peers: self.esl_allowed_peers.clone(),
            command_timeout: self.command_timeout,
            call_deadline: self.call_deadline,
            linger: self.linger,
            shutdown_grace: self.shutdown_grace,
            // FreeSWITCH needs absolute paths to play uploaded media.
            data_dir: Some(
                std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone()),
            ),
            default_account: self.default_account.clone(),
            ..EngineConfig::default()
        }
    }

    /// Resolves flags/env (already merged by clap) over the optional TOML file over defaults.
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let mut config = Config::default();

        if let Some(v) = args.listen.or(parse_opt("listen", file.listen.as_deref())?) {
            config.listen = v;
        }
        if let Some(v) = args.data_dir.clone().or(file.data_dir) {
            config.data_dir = v;
        }
        if let Some(v) = args.db_cache_mb.or(file.db_cache_mb) {
            config.db_cache_mb = v.max(1);
        }
        if let Some(v) = pick_duration(
            "deleted_retention",
            &args.deleted_retention,
            &file.deleted_retention,
        )? {
            config.deleted_retention = v;
        }
        if let Some(v) =
            pick_duration("token_lifetime", &args.token_lifetime, &file.token_lifetime)?
        {
            config.token_lifetime = v;
        }
        if let Some(v) = args.log_format.or(file.log_format) {
            config.log_format = v;
        }
        if let Some(v) = args.log_level.clone().or(file.log_level) {
            config.log_level = v;
        }
        if let Some(v) = args.node.clone().or(file.node) {
            config.node = v;
        }
        if let Some(v) = args.max_body_bytes.or(file.max_body_bytes) {
            config.max_body_bytes = v;
        }
        if let Some(v) = args
            .esl_listen
            .or(parse_opt("esl_listen", file.esl_listen.as_deref())?)
        {
            config.esl_listen = v;
        }
        let peers = if args.esl_allowed_peers.is_empty() {
            file.esl_allowed_peers.unwrap_or_default()
        } else {
            args.esl_allowed_peers.clone()
        };
        if !peers.is_empty() {
            config.esl_allowed_peers = peers
                .iter()
                .map(|p| {
                    p.parse::<IpNet>().map_err(|message| ConfigError::Value {
                        key: "esl_allowed_peers",
                        message,
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = pick_duration(
            "command_timeout",
            &args.command_timeout,
            &file.command_timeout,
        )? {
            config.command_timeout = v;
        }
        if let Some(v) = pick_duration("call_deadline", &args.call_deadline, &file.call_deadline)? {
            config.call_deadline = v;
        }
        if let Some(v) =
            pick_duration("shutdown_grace", &args.shutdown_grace, &file.shutdown_grace)?
        {
            config.shutdown_grace = v;
        }
        if let Some(v) = pick_duration("linger", &args.linger, &file.linger)? {
            config.linger = v;
        }
        if let Some(v) = args.default_account.clone().or(file.default_account) {
            config.default_account = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = args.directory_username.clone().or(file.directory_username) {
            config.directory_username = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = args.directory_password.clone().or(file.directory_password) {
            config.directory_password = Some(v).filter(|s| !s.is_empty());
        }
        let peers = if args.directory_allowed_peers.is_empty() {
            file.directory_allowed_peers.unwrap_or_default()
        } else {
            args.directory_allowed_peers.clone()
        };
        if !peers.is_empty() {
            config.directory_allowed_peers = peers
                .iter()
                .map(|p| {
                    p.parse::<IpNet>().map_err(|message| ConfigError::Value {
                        key: "directory_allowed_peers",
                        message,
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = args
            .directory_user_context
            .clone()
            .or(file.directory_user_context)
        {
            config.directory_user_context = v;
        }
        if let Some(v) = args.media_max_bytes.or(file.media_max_bytes) {
            config.media_max_bytes = v;
        }
        if let Some(v) = args.tls_cert.clone().or(file.tls_cert) {
            config.tls_cert = Some(v).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(v) = args.tls_key.clone().or(file.tls_key) {
            config.tls_key = Some(v).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(v) = pick_duration(
            "header_read_timeout",
            &args.header_read_timeout,
            &file.header_read_timeout,
        )? {
            config.header_read_timeout = v;
        }
        if let Some(v) = pick_duration("body_timeout", &args.body_timeout, &file.body_timeout)? {
            config.body_timeout = v;
        }
        if let Some(v) = args.max_header_bytes.or(file.max_header_bytes) {
            config.max_header_bytes = v;
        }
        if let Some(v) = args.max_connections.or(file.max_connections) {
            config.max_connections = v;
        }
        if let Some(v) = args.login_max_failures.or(file.login_max_failures) {
            config.login_max_failures = v;
        }
        if let Some(v) = pick_duration(
            "login_failure_window",
            &args.login_failure_window,
            &file.login_failure_window,
        )? {
            config.login_failure_window = v;
        }
        config.check()?;
        Ok(config)
    }

    /// Rejects values that cannot work, before anything starts.
    pub fn check(&self) -> Result<(), ConfigError> {
        let fail = |key: &'static str, message: &str| {
            Err(ConfigError::Value {
                key,
                message: message.to_string(),
            })
        };
        if self.token_lifetime.is_zero() {
            return fail("token_lifetime", "must be greater than zero");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return fail("tls_cert", "tls_cert and tls_key go together");
        }
        if self.header_read_timeout.is_zero() {
            return fail("header_read_timeout", "must be greater than zero");
        }
        if self.body_timeout.is_zero() {
            return fail("body_timeout", "must be greater than zero");
        }
        if self.max_header_bytes < crate::api::server::MIN_HEADER_BYTES {
            return fail("max_header_bytes", "must be at least 8192");
        }
        if self.max_connections == 0 {
            return fail("max_connections", "must be greater than zero");
        }
        if self.login_max_failures > 0 && self.login_failure_window.is_zero() {
            return fail("login_failure_window", "must be greater than zero");
        }
        Ok(())
    }
}

/// The settings flags (each also readable from `CALLFLOWD_<NAME>`), shared by every subcommand
/// that touches the database or the service.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Optional TOML file with any of the settings below (keys use `_`).
    #[arg(long, env = "CALLFLOWD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:8000].
    #[arg(long, env = "CALLFLOWD_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// sled database directory [default: ./data].
    #[arg(long, env = "CALLFLOWD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// sled page cache in MiB [default: 64].
    #[arg(long, env = "CALLFLOWD_DB_CACHE_MB", global = true)]
    pub db_cache_mb: Option<u64>,
    /// Keep soft-deleted documents this long, e.g. `30d`, `12h`; `0` keeps them forever
    /// [default: 30d].
    #[arg(long, env = "CALLFLOWD_DELETED_RETENTION", global = true)]
    pub deleted_retention: Option<String>,
    /// Auth token lifetime, e.g. `3600`, `1h`, `90s` [default: 1h].
    #[arg(long, env = "CALLFLOWD_TOKEN_LIFETIME", global = true)]
    pub token_lifetime: Option<String>,
    /// Log format: `human` or `json` [default: human].
    #[arg(long, env = "CALLFLOWD_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,
    /// tracing filter, e.g. `info` or `callflowd=debug` [default: info; RUST_LOG wins].
    #[arg(long, env = "CALLFLOWD_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Name reported as the envelope's `node`.
    #[arg(long, env = "CALLFLOWD_NODE", global = true)]
    pub node: Option<String>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "CALLFLOWD_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// ESL listener address for FreeSWITCH's `socket` app [default: 127.0.0.1:8084].
    #[arg(long, env = "CALLFLOWD_ESL_LISTEN", global = true)]
    pub esl_listen: Option<SocketAddr>,
    /// Peers allowed on the ESL port, comma-separated CIDRs [default: 127.0.0.0/8,::1/128].
    #[arg(
        long,
        env = "CALLFLOWD_ESL_ALLOWED_PEERS",
        value_delimiter = ',',
        global = true
    )]
    pub esl_allowed_peers: Vec<String>,
    /// ESL command timeout [default: 15s].
    #[arg(long, env = "CALLFLOWD_COMMAND_TIMEOUT", global = true)]
    pub command_timeout: Option<String>,
    /// Longest a call stays under our control [default: 4h].
    #[arg(long, env = "CALLFLOWD_CALL_DEADLINE", global = true)]
    pub call_deadline: Option<String>,
    /// Account for calls that name none and match no realm.
    #[arg(long, env = "CALLFLOWD_DEFAULT_ACCOUNT", global = true)]
    pub default_account: Option<String>,
    /// `linger` asked of FreeSWITCH after a hangup [default: 10s].
    #[arg(long, env = "CALLFLOWD_LINGER", global = true)]
    pub linger: Option<String>,
    /// On SIGTERM, how long calls in flight may go on before they are handed back to the
    /// dialplan [default: 30s].
    #[arg(long, env = "CALLFLOWD_SHUTDOWN_GRACE", global = true)]
    pub shutdown_grace: Option<String>,
    /// Basic-auth user for FreeSWITCH's mod_xml_curl on `POST /directory` [default: none = off].
    #[arg(long, env = "CALLFLOWD_DIRECTORY_USERNAME", global = true)]
    pub directory_username: Option<String>,
    /// Basic-auth password for `POST /directory` (prefer the env variable or the TOML file).
    #[arg(long, env = "CALLFLOWD_DIRECTORY_PASSWORD", global = true)]
    pub directory_password: Option<String>,
    /// Peers allowed on `POST /directory`, comma-separated CIDRs [default: 127.0.0.0/8,::1/128].
    #[arg(
        long,
        env = "CALLFLOWD_DIRECTORY_ALLOWED_PEERS",
        value_delimiter = ',',
        global = true
    )]
    pub directory_allowed_peers: Vec<String>,
    /// Dialplan context of registered devices' calls (`user_context`) [default: default].
    #[arg(long, env = "CALLFLOWD_DIRECTORY_USER_CONTEXT", global = true)]
    pub directory_user_context: Option<String>,
    /// Largest media upload in bytes [default: 10485760].
    #[arg(long, env = "CALLFLOWD_MEDIA_MAX_BYTES", global = true)]
    pub media_max_bytes: Option<usize>,
    /// PEM certificate chain; with --tls-key the API serves HTTPS (rustls) instead of HTTP.
    #[arg(long, env = "CALLFLOWD_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "CALLFLOWD_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Longest wait for a request head, a TLS handshake or the next keep-alive request [default: 10s].
    #[arg(long, env = "CALLFLOWD_HEADER_READ_TIMEOUT", global = true)]
    pub header_read_timeout: Option<String>,
    /// Longest wait for a whole request body, from the request head (408 after) [default: 30s].
    #[arg(long, env = "CALLFLOWD_BODY_TIMEOUT", global = true)]
    pub body_timeout: Option<String>,
    /// Largest request head (request line and headers) in bytes, 431 beyond [default: 65536].
    #[arg(long, env = "CALLFLOWD_MAX_HEADER_BYTES", global = true)]
    pub max_header_bytes: Option<usize>,
    /// Most API connections open at once [default: 1024].
    #[arg(long, env = "CALLFLOWD_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Failed logins per source address per window before 429; 0 = no limit [default: 10].
    #[arg(long, env = "CALLFLOWD_LOGIN_MAX_FAILURES", global = true)]
    pub login_max_failures: Option<u32>,
    /// The window of --login-max-failures [default: 1m].
    #[arg(long, env = "CALLFLOWD_LOGIN_FAILURE_WINDOW", global = true)]
    pub login_failure_window: Option<String>,
}

/// A duration in the TOML file: an integer number of seconds or a string like `"15s"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// Whole seconds.
    Seconds(u64),
    /// `"500ms"`, `"15s"`, `"2m"`, `"4h"`, `"1d"`.
    Text(String),
}

impl DurationValue {
    fn resolve(&self, key: &'static str) -> Result<Duration, ConfigError> {
        match self {
            DurationValue::Seconds(s) => Ok(Duration::from_secs(*s)),
            DurationValue::Text(t) => {
                parse_duration(t).map_err(|message| ConfigError::Value { key, message })
            }
        }
    }
}

/// The TOML file's shape: every key optional, unknown keys rejected (typos should not pass).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    db_cache_mb: Option<u64>,
    deleted_retention: Option<DurationValue>,
    token_lifetime: Option<DurationValue>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    node: Option<String>,
    max_body_bytes: Option<usize>,
    esl_listen: Option<String>,
    esl_allowed_peers: Option<Vec<String>>,
    command_timeout: Option<DurationValue>,
    call_deadline: Option<DurationValue>,
    default_account: Option<String>,
    linger: Option<DurationValue>,
    shutdown_grace: Option<DurationValue>,
    directory_username: Option<String>,
    directory_password: Option<String>,
    directory_allowed_peers: Option<Vec<String>>,
    directory_user_context: Option<String>,
    media_max_bytes: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    header_read_timeout: Option<DurationValue>,
    body_timeout: Option<DurationValue>,
    max_header_bytes: Option<usize>,
    max_connections: Option<usize>,
    login_max_failures: Option<u32>,
    login_failure_window: Option<DurationValue>,
}

impl FileConfig {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

fn parse_opt<T: std::str::FromStr>(
    key: &'static str,
    value: Option<&str>,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Value {
                key,
                message: e.to_string(),
            })
        })
        .transpose()
}

fn pick_duration(
    key: &'static str,
    flag: &Option<String>,
    file: &Option<DurationValue>,
) -> Result<Option<Duration>, ConfigError> {
    if let Some(text) = flag {
        return parse_duration(text)
            .map(Some)
            .map_err(|message| ConfigError::Value { key, message });
    }
    file.as_ref().map(|v| v.resolve(key)).transpose()
}

/// Parses `"250ms"`, `"15s"`, `"2m"`, `"4h"`, `"1d"`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 15s, 500ms, 4h)"))?;
    let millis = match unit.trim() {
        "" | "s" | "sec" | "secs" => value.checked_mul(1000),
        "ms" => Some(value),
        "m" | "min" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        "d" => value.checked_mul(86_400_000),
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn default_node() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("callflowd@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("4h").unwrap(), Duration::from_secs(4 * 3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3y").is_err());
    }

    #[test]
    fn layering_flag_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ntoken_lifetime = 60\ndeleted_retention = \"7d\"\nlinger = \"3s\"\nesl_allowed_peers = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let args = ConfigArgs {
            config: Some(path.clone()),
            token_lifetime: Some("2m".into()),
            ..ConfigArgs::default()
        };
        let config = Config::load(&args).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.token_lifetime, Duration::from_secs(120));
        assert_eq!(config.deleted_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(config.linger, Duration::from_secs(3));
        assert_eq!(config.esl_allowed_peers.len(), 1);
        assert_eq!(config.esl_listen.port(), 8084);

        std::fs::write(
            &path,
            "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nheader_read_timeout = \"2s\"\nbody_timeout = 5\nmax_header_bytes = 16384\nmax_connections = 8\nlogin_max_failures = 3\nlogin_failure_window = \"10m\"\n",
        )
        .unwrap();
        let config = Config::load(&args).unwrap();
        assert_eq!(config.tls_cert.as_deref(), Some(Path::new("c.pem")));
        assert_eq!(config.tls_key.as_deref(), Some(Path::new("k.pem")));
        assert_eq!(config.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.body_timeout, Duration::from_secs(5));
        assert_eq!(config.max_header_bytes, 16384);
        assert_eq!(config.max_connections, 8);
        assert_eq!(config.login_max_failures, 3);
        assert_eq!(config.login_failure_window, Duration::from_secs(600));

        for bad in [
            "tls_cert = \"c.pem\"\n",
            "max_header_bytes = 100\n",
            "max_connections = 0\n",
            "body_timeout = 0\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                matches!(Config::load(&args), Err(ConfigError::Value { .. })),
                "{bad}"
            );
        }

        let config = Config {
            directory_password: Some("hunter2-secret".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("hunter2-secret"));

        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(matches!(
            Config::load(&args),
            Err(ConfigError::Parse { .. })
        ));
    }
}

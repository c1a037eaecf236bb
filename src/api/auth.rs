//! HTTP authentication: `PUT /v2/api_auth`, `PUT /v2/user_auth`, and the token check every other
//! `/v2` route runs.
//!
//! Tokens come from `X-Auth-Token`, `Authorization: Bearer`, or the `auth_token` query parameter
//! (as Crossbar accepts). Missing, malformed, badly signed or expired -> 401 `"error":"401"`
//! (a string: one client re-authenticates only on exactly that); a valid token used on another
//! account's path -> 403.
//!
//! Failed logins are rate-limited per source address by [`LoginAttempts`]: each source may fail
//! `login_max_failures` times per `login_failure_window` (a token bucket: the allowance refills
//! evenly over the window), then every login from it gets 429 with `Retry-After` until the
//! bucket refills. A login attempt takes its token *before* the credentials are checked (so
//! parallel guesses cannot overshoot, and a refused source costs no hashing) and a successful
//! one gives it back. Sources are peer IP addresses (IPv6 by /64, since one host usually holds a
//! whole /64); proxies' `X-Forwarded-For` is not trusted.

use super::AppState;
use super::envelope::{ApiError, Ctx, Reply, RequestData};
use crate::auth::secrets::DigestMethod;
use crate::auth::token::Claims;
use crate::store::Account;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderMap, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who a request is authenticated as (inserted by [`require_auth`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthContext {
    /// The token's account.
    pub account_id: String,
    /// The logged-in user, for `user_auth` tokens.
    pub owner_id: Option<String>,
}

/// Most sources [`LoginAttempts`] tracks at once; past it, the least recently seen half is
/// forgotten (their allowance starts afresh).
pub const LOGIN_SOURCES_TRACKED: usize = 65_536;

/// Where a login comes from: an IPv4 address, or an IPv6 /64 (IPv4-mapped addresses count as
/// IPv4); `None` when the connection's address is unknown (all such logins share one bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginSource(Option<IpAddr>);

impl LoginSource {
    /// The source of a login from `ip`.
    pub fn new(ip: Option<IpAddr>) -> Self {
        LoginSource(ip.map(|ip| match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(segments.into())
                }
            },
        }))
    }
}

impl std::fmt::Display for LoginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

/// The login's [`LoginSource`], from the connection's peer address (an extractor that never
/// fails).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub LoginSource);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Peer(LoginSource::new(ip)))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed (fractional while refilling).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
    /// Whether the refusal of this source was logged (once per episode, not per request).
    warned: bool,
}

/// Failed-login rate limit per [`LoginSource`]: a token bucket of `max_failures` tokens that
/// refills completely over `window`. Memory is bounded by `max_sources`.
#[derive(Debug)]
pub struct LoginAttempts {
    capacity: f64,
    /// Tokens per second.
    refill: f64,
    max_sources: usize,
    buckets: Mutex<HashMap<LoginSource, Bucket>>,
}

impl LoginAttempts {
    /// A limit of `max_failures` per `window` (0 failures or a zero window: no limit), tracking
    /// at most `max_sources` sources.
    pub fn new(max_failures: u32, window: Duration, max_sources: usize) -> Self {
        let enabled = max_failures > 0 && !window.is_zero();
        LoginAttempts {
            capacity: f64::from(max_failures),
            refill: if enabled {
                f64::from(max_failures) / window.as_secs_f64()
            } else {
                0.0
            },
            max_sources: max_sources.max(2),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.refill > 0.0
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<LoginSource, Bucket>> {
        // The map holds plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * self.refill).min(self.capacity),
            updated: now,
            warned: bucket.warned,
        }
    }

    /// Takes one attempt's token for `source`, or refuses with 429 and the seconds until the
    /// next one. Call [`LoginAttempts::succeeded`] when the login works (the token comes back).
    pub fn begin(&self, source: LoginSource) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets();
        if !buckets.contains_key(&source) && buckets.len() >= self.max_sources {
            self.make_room(&mut buckets, now);
        }
        let fresh = Bucket {
            tokens: self.capacity,
            updated: now,
            warned: false,
        };
        let bucket = buckets.entry(source).or_insert(fresh);
        *bucket = self.refilled(*bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.warned = false;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / self.refill).ceil().max(1.0);
        let first = !std::mem::replace(&mut bucket.warned, true);
        drop(buckets);
        if first {
            tracing::warn!(%source, "too many failed logins; refusing logins from this source");
        } else {
            tracing::debug!(%source, "login refused: too many failures");
        }
        Err(ApiError::TooManyRequests(wait as u64))
    }

    /// Forgets sources whose allowance is whole again; if that is not enough, the least
    /// recently seen half.
    fn make_room(&self, buckets: &mut HashMap<LoginSource, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(*bucket, now).tokens < self.capacity);
        if buckets.len() >= self.max_sources {
            let mut seen: Vec<Instant> = buckets.values().map(|b| b.updated).collect();
            seen.sort_unstable();
            let cutoff = seen[seen.len() / 2];
            buckets.retain(|_, bucket| bucket.updated > cutoff);
        }
    }

    /// Records a failed login (its token stays taken).
    pub fn failed(&self, source: LoginSource) {
        tracing::info!(%source, "login failed");
    }

    /// Records a successful login: the token taken by [`LoginAttempts::begin`] comes back.
    /// Other sources' counts are untouched.
    pub fn succeeded(&self, source: LoginSource) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        if let Some(bucket) = self.buckets().get_mut(&source) {
            let mut refilled = self.refilled(*bucket, now);
            refilled.tokens = (refilled.tokens + 1.0).min(self.capacity);
            *bucket = refilled;
        }
    }

    /// How many sources are tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets().len()
    }
}

/// The token a request presents, if any.
pub fn presented_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return Some(token.trim().to_string()).filter(|t| !t.is_empty());
    }
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = auth.trim().splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim().to_string()).filter(|t| !t.is_empty());
            }
        }
    }
    query.and_then(|q| {
        super::envelope::parse_query(q)
            .into_iter()
            .find(|(k, _)| k == "auth_token")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    })
}

/// Route layer of every authenticated route: verifies the token, checks the `{account_id}` path
/// segment against it, and hands an [`AuthContext`] to the handler.
pub async fn require_auth(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = presented_token(req.headers(), req.uri().query()).ok_or(ApiError::Unauthorized)?;
    let claims = state
        .signer
        .verify(&token, crate::util::unix_now())
        .map_err(|error| {
            tracing::debug!(%error, "token refused");
            ApiError::Unauthorized
        })?;
    if state.store.account(&claims.account_id)?.is_none() {
        return Err(ApiError::Unauthorized);
    }
    let (mut parts, body) = req.into_parts();
    if let Ok(params) = RawPathParams::from_request_parts(&mut parts, &state).await {
        if let Some((_, account)) = params.iter().find(|(name, _)| *name == "account_id") {
            if account != claims.account_id {
                return Err(ApiError::Forbidden(account.to_string()));
            }
        }
    }
    parts.extensions.insert(AuthContext {
        account_id: claims.account_id,
        owner_id: claims.owner_id,
    });
    Ok(next.run(Request::from_parts(parts, body)).await)
}

fn issue(state: &AppState, account: &Account, owner_id: Option<String>, method: &str) -> Reply {
    let now = crate::util::unix_now();
    let claims = Claims {
        account_id: account.id.clone(),
        owner_id: owner_id.clone(),
        method: method.to_string(),
        iat: now,
        exp: now + state.settings.token_lifetime.as_secs().max(1),
        jti: crate::util::random_hex(8),
    };
    let token = state.signer.issue(&claims);
    let mut data = json!({
        "account_id": account.id,
        "account_name": account.name,
        "reseller_id": account.id,
        "is_reseller": false,
        "language": "en-us",
        "apps": [],
    });
    if let (Some(owner), Some(object)) = (owner_id, data.as_object_mut()) {
        object.insert("owner_id".into(), Value::String(owner));
    }
    Reply::created(data).auth_token(token)
}

fn required_string(data: &Value, key: &str) -> Result<String, ApiError> {
    match data.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => {
            let mut errors = crate::callflow::errors::FieldErrors::new();
            errors.add(
                key,
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": other}),
            );
            Err(ApiError::Validation(errors))
        }
        None => {
            let mut errors = crate::callflow::errors::FieldErrors::new();
            errors.add_message(key, "required", "Field is required but missing");
            Err(ApiError::Validation(errors))
        }
    }
}

/// `PUT /v2/api_auth` `{"data":{"api_key":K}}` -> 201 with `auth_token` and `data.account_id`.
pub async fn api_auth(
    State(state): State<AppState>,
    Peer(source): Peer,
    _ctx: Ctx,
    RequestData(data): RequestData,
) -> Result<Reply, ApiError> {
    let key = required_string(&data, "api_key")?;
    state.logins.begin(source)?;
    let store = state.store.clone();
    let lookup = key.clone();
    let account_id = tokio::task::spawn_blocking(move || store.verify_api_key(&lookup))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let account = match account_id {
        Some(id) => state.store.account(&id)?,
        None => None,
    };
    let Some(account) = account else {
        state.logins.failed(source);
        return Err(ApiError::Unauthorized);
    };
    state.logins.succeeded(source);
    Ok(issue(&state, &account, None, "api_auth"))
}

/// `PUT /v2/user_auth` `{"data":{"credentials":md5("user:pass"),"account_name":N}}` (or
/// `account_realm`; `"method":"sha"` for sha1) -> 201 with `auth_token`, `account_id`, `owner_id`.
/// `phone_number` lookups are not supported (no cross-account number index yet) and fail as 401.
pub async fn user_auth(
    State(state): State<AppState>,
    Peer(source): Peer,
    _ctx: Ctx,
    RequestData(data): RequestData,
) -> Result<Reply, ApiError> {
    let credentials = required_string(&data, "credentials")?;
    let method = match data.get("method").and_then(Value::as_str) {
        Some("sha") | Some("sha1") => DigestMethod::Sha1,
        _ => DigestMethod::Md5,
    };
    let name = data.get("account_name").and_then(Value::as_str);
    let realm = data.get("account_realm").and_then(Value::as_str);
    if name.is_none() && realm.is_none() && data.get("phone_number").is_none() {
        let mut errors = crate::callflow::errors::FieldErrors::new();
        errors.add_message("account_name", "required", "Field is required but missing");
        return Err(ApiError::Validation(errors));
    }
    state.logins.begin(source)?;
    let account = match (name, realm) {
        (Some(name), _) => state.store.account_by_name(name)?,
        (None, Some(realm)) => state.store.account_by_realm(realm)?,
        (None, None) => None,
    };
    let Some(account) = account else {
        state.logins.failed(source);
        return Err(ApiError::Unauthorized);
    };
    let store = state.store.clone();
    let account_id = account.id.clone();
    let login = tokio::task::spawn_blocking(move || {
        store.verify_user_credentials(&account_id, method, &credentials)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let Some(login) = login else {
        state.logins.failed(source);
        return Err(ApiError::Unauthorized);
    };
    state.logins.succeeded(source);
    Ok(issue(&state, &account, Some(login.user_id), "user_auth"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> LoginSource {
        LoginSource::new(Some(text.parse().unwrap()))
    }

    #[test]
    fn sources_group_ipv6_by_64_and_unmap_ipv4() {
        assert_eq!(
            source("2001:db8:1:2:aaaa::1"),
            source("2001:db8:1:2:ffff::9")
        );
        assert_ne!(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
        assert_eq!(source("::ffff:10.0.0.1"), source("10.0.0.1"));
        assert_eq!(source("2001:db8:1:2::7").to_string(), "2001:db8:1:2::/64");
        assert_eq!(LoginSource::new(None).to_string(), "unknown");
    }

    #[test]
    fn a_bucket_empties_refuses_and_gives_back_on_success() {
        let limit = LoginAttempts::new(3, Duration::from_secs(60), 100);
        let a = source("192.0.2.1");
        let b = source("192.0.2.2");
        limit.begin(a).unwrap();
        limit.succeeded(a);
        for _ in 0..3 {
            limit.begin(a).unwrap();
            limit.failed(a);
        }
        match limit.begin(a) {
            Err(ApiError::TooManyRequests(wait)) => assert!((19..=20).contains(&wait), "{wait}"),
            other => panic!("{other:?}"),
        }
        // Another source is untouched, and its success does not help `a`.
        limit.begin(b).unwrap();
        limit.succeeded(b);
        assert!(limit.begin(a).is_err());
    }

    #[test]
    fn memory_stays_bounded() {
        let limit = LoginAttempts::new(1, Duration::from_secs(3600), 100);
        for i in 0..10_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let _ = limit.begin(LoginSource::new(Some(IpAddr::V4(ip))));
            assert!(limit.tracked() <= 100, "{} tracked", limit.tracked());
        }
        // Recent sources are kept: the last one is still limited.
        let last = LoginSource::new(Some(IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + 9_999u32,
        ))));
        assert!(limit.begin(last).is_err());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = LoginAttempts::new(0, Duration::from_secs(60), 100);
        for _ in 0..100 {
            limit.begin(source("192.0.2.9")).unwrap();
        }
        assert_eq!(limit.tracked(), 0);
    }
}

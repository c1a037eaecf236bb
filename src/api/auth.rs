//! HTTP authentication: `PUT /v2/api_auth`, `PUT /v2/user_auth`, and the token check every other
//! `/v2` route runs.
//!
//! Tokens come from `X-Auth-Token`, `Authorization: Bearer`, or the `auth_token` query parameter
//! (as Crossbar accepts). Missing, malformed, badly signed or expired -> 401 `"error":"401"`
//! (a string: one client re-authenticates only on exactly that); a valid token used on another
//! account's path -> 403.
//!
//! Logins go through [`LoginAttempts`], which today always allows; failed-login rate limiting
//! (issue 7) plugs in there without touching the handlers.

use super::AppState;
use super::envelope::{ApiError, Ctx, Reply, RequestData};
use crate::auth::secrets::DigestMethod;
use crate::auth::token::Claims;
use crate::store::Account;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

/// Who a request is authenticated as (inserted by [`require_auth`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthContext {
    /// The token's account.
    pub account_id: String,
    /// The logged-in user, for `user_auth` tokens.
    pub owner_id: Option<String>,
}

/// Gatekeeper for login attempts. Today it allows everything; issue 7 adds per-key and per-peer
/// failure counting here (`check` before verifying, `failed`/`succeeded` after).
#[derive(Debug, Default)]
pub struct LoginAttempts;

impl LoginAttempts {
    /// Whether a login for `key` (an account name, an API key id) may be tried now.
    pub fn check(&self, _key: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Records a failed login for `key`.
    pub fn failed(&self, key: &str) {
        tracing::info!(key, "login failed");
    }

    /// Records a successful login for `key`.
    pub fn succeeded(&self, _key: &str) {}
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
    _ctx: Ctx,
    RequestData(data): RequestData,
) -> Result<Reply, ApiError> {
    let key = required_string(&data, "api_key")?;
    let key_id: String = key.chars().take(crate::auth::secrets::KEY_ID_LEN).collect();
    state.logins.check(&key_id)?;
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
        state.logins.failed(&key_id);
        return Err(ApiError::Unauthorized);
    };
    state.logins.succeeded(&key_id);
    Ok(issue(&state, &account, None, "api_auth"))
}

/// `PUT /v2/user_auth` `{"data":{"credentials":md5("user:pass"),"account_name":N}}` (or
/// `account_realm`; `"method":"sha"` for sha1) -> 201 with `auth_token`, `account_id`, `owner_id`.
/// `phone_number` lookups are not supported (no cross-account number index yet) and fail as 401.
pub async fn user_auth(
    State(state): State<AppState>,
    _ctx: Ctx,
    RequestData(data): RequestData,
) -> Result<Reply, ApiError> {
    let credentials = required_string(&data, "credentials")?;
    let method = match data.get("method").and_then(Value::as_str) {
        Some("sha") | Some("sha1") => DigestMethod::Sha1,
        _ => DigestMethod::Md5,
    };
    let account = if let Some(name) = data.get("account_name").and_then(Value::as_str) {
        state.store.account_by_name(name)?
    } else if let Some(realm) = data.get("account_realm").and_then(Value::as_str) {
        state.store.account_by_realm(realm)?
    } else if data.get("phone_number").is_some() {
        None
    } else {
        let mut errors = crate::callflow::errors::FieldErrors::new();
        errors.add_message("account_name", "required", "Field is required but missing");
        return Err(ApiError::Validation(errors));
    };
    let Some(account) = account else {
        state.logins.failed("unknown-account");
        return Err(ApiError::Unauthorized);
    };
    state.logins.check(&account.id)?;
    let store = state.store.clone();
    let account_id = account.id.clone();
    let login = tokio::task::spawn_blocking(move || {
        store.verify_user_credentials(&account_id, method, &credentials)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let Some(login) = login else {
        state.logins.failed(&account.id);
        return Err(ApiError::Unauthorized);
    };
    state.logins.succeeded(&account.id);
    Ok(issue(&state, &account, Some(login.user_id), "user_auth"))
}

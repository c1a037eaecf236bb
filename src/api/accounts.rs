//! `GET /v2/accounts/{account_id}`: the caller's own account.

use super::AppState;
use super::envelope::{ApiError, Reply};
use super::routes::{RouteSpec, Verb};
use axum::extract::{Path, State};
use serde_json::json;

async fn get_account(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    let account = state
        .store
        .account(&account_id)?
        .ok_or_else(|| ApiError::NotFound(account_id.clone()))?;
    Ok(Reply::ok(
        json!({"id": account.id, "name": account.name, "realm": account.realm}),
    ))
}

/// The account routes.
pub fn routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec::new(Verb::Get, "/v2/accounts/{account_id}", "get_account", get_account)
            .summary("Get the account (id, name, realm)")
            .tag("accounts")
            .auth()
            .response(json!({"type": "object", "required": ["id", "name"], "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "realm": {"type": ["string", "null"]}}})),
    ]
}

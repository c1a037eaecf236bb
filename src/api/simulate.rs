//! `POST /v2/accounts/{account_id}/simulate`: a dry run of a number (callflowd's own route; Kazoo
//! has none). The real engine runs the account's live callflow against the built-in fake switch
//! and the reply is the timeline (modules, ESL commands, results, branches) and the ESL commands
//! the switch received. No real call is placed.

use super::AppState;
use super::envelope::{ApiError, Reply, RequestData};
use super::routes::{RouteSpec, Verb};
use crate::engine::EngineContext;
use crate::engine::simulate::{SimulateRequest, describe_end, simulate, timeline_json};
use crate::store::StoreRead;
use axum::extract::{Path, State};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Longest a dry run may take before the API gives up on it.
const SIMULATION_LIMIT: Duration = Duration::from_secs(120);

async fn run(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    RequestData(data): RequestData,
) -> Result<Reply, ApiError> {
    let request: SimulateRequest = serde_json::from_value(data).map_err(|e| {
        let mut errors = crate::callflow::errors::FieldErrors::new();
        errors.add_message("number", "invalid", e.to_string());
        ApiError::Validation(errors)
    })?;
    let script = request.script(&account_id).map_err(|e| {
        let mut errors = crate::callflow::errors::FieldErrors::new();
        errors.add_message("digits", "invalid", e);
        ApiError::Validation(errors)
    })?;
    let store: Arc<dyn StoreRead> = state.store.clone();
    let mut config = state.settings.engine.clone();
    config.call_deadline = SIMULATION_LIMIT;
    let ctx = EngineContext::new(config, store);
    let simulation = tokio::time::timeout(SIMULATION_LIMIT, simulate(ctx, script))
        .await
        .map_err(|_| ApiError::Internal("simulation timed out".into()))?
        .map_err(|e| ApiError::Internal(format!("simulation failed: {e}")))?;
    Ok(Reply::ok(json!({
        "number": request.number,
        "end": describe_end(&simulation),
        "timeline": timeline_json(&simulation.report.timeline),
        "esl_commands": simulation.transcript.command_lines(),
    })))
}

/// The simulate route.
pub fn routes() -> Vec<RouteSpec> {
    let string = json!({"type": "string"});
    vec![
        RouteSpec::new(
            Verb::Post,
            "/v2/accounts/{account_id}/simulate",
            "simulate_call",
            run,
        )
        .summary("Dry-run a number: the real engine against the built-in fake FreeSWITCH")
        .tag("simulate")
        .auth()
        .request(json!({
            "type": "object",
            "required": ["number"],
            "properties": {
                "number": {"type": "string", "minLength": 1, "maxLength": 64},
                "caller": string.clone(),
                "digits": string.clone(),
                "peer_digits": string.clone(),
                "hangup_after": string.clone(),
                "media_time": string.clone(),
                "bridge": string
            }
        }))
        .response(json!({"type": "object", "properties": {
            "number": {"type": "string"},
            "end": {"type": "string"},
            "timeline": {"type": "array", "items": {"type": "object"}},
            "esl_commands": {"type": "array", "items": {"type": "string"}}
        }})),
    ]
}

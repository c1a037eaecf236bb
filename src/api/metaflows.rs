//! `GET/POST/DELETE /v2/accounts/{account_id}/metaflows`: the account's metaflows object (Kazoo's
//! `cb_metaflows`), validated with the engine's metaflow rules and stored where the engine reads
//! it (`document(account, "metaflows", account_id)`).

use super::AppState;
use super::envelope::{ApiError, Ctx, Reply, RequestData};
use super::routes::{RouteSpec, Verb};
use crate::documents::metaflows::METAFLOWS;
use crate::documents::{self, WriteContext};
use crate::store::StoredDoc;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};

fn view(doc: &StoredDoc) -> Value {
    let mut public = doc.public();
    public.remove("id");
    Value::Object(public)
}

fn write_ctx(ctx: &Ctx) -> WriteContext<'_> {
    WriteContext {
        request_id: &ctx.request_id,
        if_match: ctx.if_match.as_deref(),
    }
}

async fn get_metaflows(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    match state
        .store
        .get_doc(&account_id, METAFLOWS.name, &account_id)?
    {
        Some(doc) => Ok(Reply::ok(view(&doc)).revision(doc.revision())),
        None => Ok(Reply::ok(Value::Object(Map::new()))),
    }
}

async fn set_metaflows(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(account_id): Path<String>,
    RequestData(data): RequestData,
) -> Result<Reply, ApiError> {
    let doc = documents::upsert(
        state.store.as_ref(),
        &METAFLOWS,
        &account_id,
        &account_id,
        data,
        write_ctx(&ctx),
    )
    .await?;
    Ok(Reply::ok(view(&doc)).revision(doc.revision()))
}

async fn delete_metaflows(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    let doc = documents::delete(
        state.store.as_ref(),
        &METAFLOWS,
        &account_id,
        &account_id,
        write_ctx(&ctx),
    )
    .await?;
    Ok(Reply::ok(json!({"_read_only": {"deleted": true}})).revision(doc.revision()))
}

/// The account metaflows routes.
pub fn routes() -> Vec<RouteSpec> {
    let path = "/v2/accounts/{account_id}/metaflows";
    let schema = json!({"$ref": "#/components/schemas/metaflows"});
    vec![
        RouteSpec::new(Verb::Get, path, "get_metaflows", get_metaflows)
            .summary("The account's metaflows ({} when none are set)")
            .tag("metaflows")
            .auth()
            .response(schema.clone()),
        RouteSpec::new(Verb::Post, path, "set_metaflows", set_metaflows)
            .summary("Replace the account's metaflows")
            .tag("metaflows")
            .auth()
            .request(schema.clone())
            .response(schema)
            .conflicts(),
        RouteSpec::new(Verb::Delete, path, "delete_metaflows", delete_metaflows)
            .summary("Remove the account's metaflows")
            .tag("metaflows")
            .auth()
            .response(json!({"type": "object"})),
    ]
}

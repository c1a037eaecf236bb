//! The six Crossbar routes of a collection, generic over [`Collection`]: list (GET), create
//! (PUT, 201), get (GET, with `metadata`), replace (POST), deep merge (PATCH), soft delete
//! (DELETE, 200 + the document + `"_read_only":{"deleted":true}`).
//!
//! Every collection in `documents::collections()` gets these routes, with the same envelopes,
//! validation, listing/filter and auth rules; there is no per-collection handler code.

use super::AppState;
use super::envelope::{ApiError, Ctx, Reply, RequestData};
use super::routes::{RouteSpec, Verb};
use crate::documents::{self, Collection, ListParams, WriteContext};
use crate::store::StoredDoc;
use axum::extract::{Path, State};
use axum::http::header;
use serde_json::{Value, json};

fn write_ctx(ctx: &Ctx) -> WriteContext<'_> {
    WriteContext {
        request_id: &ctx.request_id,
        if_match: ctx.if_match.as_deref(),
    }
}

fn doc_reply(doc: &StoredDoc) -> Reply {
    Reply::ok(Value::Object(doc.public())).revision(doc.revision())
}

async fn list(
    collection: &'static Collection,
    state: AppState,
    ctx: Ctx,
    account_id: String,
) -> Result<Reply, ApiError> {
    let params = ListParams::from_query(&ctx.query).map_err(ApiError::Validation)?;
    let result = documents::list(state.store.as_ref(), collection, &account_id, &params)?;
    let page_size = result.items.len();
    let mut reply = Reply::ok(Value::Array(result.items));
    if result.paginated {
        reply = reply.extra("page_size", json!(page_size));
        if let Some(start) = result.start_key {
            reply = reply.extra("start_key", Value::String(start));
        }
        if let Some(next) = result.next_start_key {
            reply = reply.extra("next_start_key", Value::String(next));
        }
    }
    Ok(reply)
}

async fn create(
    collection: &'static Collection,
    state: AppState,
    ctx: Ctx,
    account_id: String,
    data: Value,
) -> Result<Reply, ApiError> {
    let doc = documents::create(
        state.store.as_ref(),
        collection,
        &account_id,
        data,
        None,
        write_ctx(&ctx),
    )
    .await?;
    let location = format!("/v2/accounts/{account_id}/{}/{}", collection.name, doc.id);
    Ok(Reply::created(Value::Object(doc.public()))
        .revision(doc.revision())
        .header(header::LOCATION, location))
}

async fn get(
    collection: &'static Collection,
    state: AppState,
    account_id: String,
    id: String,
) -> Result<Reply, ApiError> {
    let (doc, view) = documents::fetch(state.store.as_ref(), collection, &account_id, &id)?;
    Ok(Reply::ok(view).revision(doc.revision()))
}

async fn replace(
    collection: &'static Collection,
    state: AppState,
    ctx: Ctx,
    account_id: String,
    id: String,
    data: Value,
) -> Result<Reply, ApiError> {
    let doc = documents::replace(
        state.store.as_ref(),
        collection,
        &account_id,
        &id,
        data,
        write_ctx(&ctx),
    )
    .await?;
    Ok(doc_reply(&doc))
}

async fn patch(
    collection: &'static Collection,
    state: AppState,
    ctx: Ctx,
    account_id: String,
    id: String,
    data: Value,
) -> Result<Reply, ApiError> {
    let doc = documents::patch(
        state.store.as_ref(),
        collection,
        &account_id,
        &id,
        data,
        write_ctx(&ctx),
    )
    .await?;
    Ok(doc_reply(&doc))
}

async fn delete(
    collection: &'static Collection,
    state: AppState,
    ctx: Ctx,
    account_id: String,
    id: String,
) -> Result<Reply, ApiError> {
    let doc = documents::delete(
        state.store.as_ref(),
        collection,
        &account_id,
        &id,
        write_ctx(&ctx),
    )
    .await?;
    if let Some(on_delete) = collection.private.and_then(|p| p.on_delete) {
        on_delete(&state.settings.data_dir, &account_id, &id);
    }
    Ok(Reply::ok(documents::deleted_view(&doc)).revision(doc.revision()))
}

/// The routes of one collection, under its name and each alias.
pub fn routes(collection: &'static Collection) -> Vec<RouteSpec> {
    let mut routes = routes_at(collection, collection.name, false);
    for alias in collection.aliases {
        routes.extend(routes_at(collection, alias, true));
    }
    routes
}

/// The six routes of `collection` under `/v2/accounts/{account_id}/<segment>`.
fn routes_at(collection: &'static Collection, segment: &str, alias: bool) -> Vec<RouteSpec> {
    let c = collection;
    let base = format!("/v2/accounts/{{account_id}}/{segment}");
    let item = format!("{base}/{{id}}");
    let schema_ref = json!({"$ref": format!("#/components/schemas/{}", c.name)});
    let stored = json!({"allOf": [schema_ref.clone(), {"type": "object", "properties": {"id": {"type": "string"}}}]});
    let with_metadata = json!({"allOf": [schema_ref.clone(), {"type": "object", "properties": {
        "id": {"type": "string"}, "metadata": {"type": "object"}}}]});
    let deleted = json!({"allOf": [schema_ref.clone(), {"type": "object", "properties": {
        "id": {"type": "string"}, "_read_only": {"type": "object", "properties": {"deleted": {"type": "boolean"}}}}}]});
    let summary_schema = json!({"type": "array", "items": {"type": "object", "required": ["id"],
        "properties": {"id": {"type": "string"}}}});
    let noun = c.singular;
    let tag = c.name;
    let op = |verb: &str| {
        if alias {
            format!("{verb}_{noun}_via_{segment}")
        } else {
            format!("{verb}_{noun}")
        }
    };
    vec![
        RouteSpec::new(
            Verb::Get,
            &base,
            &format!("list_{segment}"),
            move |State(state): State<AppState>, ctx: Ctx, Path(account_id): Path<String>| {
                list(c, state, ctx, account_id)
            },
        )
        .summary(format!("List {segment} (summaries, ascending by id)"))
        .tag(tag)
        .auth()
        .response(summary_schema)
        .query(
            "page_size",
            "Page size (default 50)",
            json!({"type": "integer", "minimum": 1}),
        )
        .query(
            "start_key",
            "Key of the page to fetch (a previous next_start_key)",
            json!({"type": "string"}),
        )
        .query(
            "paginate",
            "false returns every document without page keys",
            json!({"type": "string", "enum": ["true", "false"]}),
        )
        .query(
            "has_key",
            "Only documents having this (dotted) key",
            json!({"type": "string"}),
        )
        .query(
            "key_missing",
            "Only documents lacking this (dotted) key",
            json!({"type": "string"}),
        )
        .query(
            "filter_*",
            "filter_<key>=<value>: only documents whose key equals one of the values",
            json!({"type": "string"}),
        )
        .query(
            "filter_not_*",
            "filter_not_<key>=<value>: drop documents whose key equals the value",
            json!({"type": "string"}),
        ),
        RouteSpec::new(
            Verb::Put,
            &base,
            &op("create"),
            move |State(state): State<AppState>,
                  ctx: Ctx,
                  Path(account_id): Path<String>,
                  RequestData(data): RequestData| {
                create(c, state, ctx, account_id, data)
            },
        )
        .summary(format!("Create a {noun}"))
        .tag(tag)
        .auth()
        .request(schema_ref.clone())
        .response(stored.clone())
        .status(201),
        RouteSpec::new(
            Verb::Get,
            &item,
            &op("get"),
            move |State(state): State<AppState>, Path((account_id, id)): Path<(String, String)>| {
                get(c, state, account_id, id)
            },
        )
        .summary(format!(
            "Get a {noun} with the metadata of what it references"
        ))
        .tag(tag)
        .auth()
        .response(with_metadata),
        RouteSpec::new(
            Verb::Post,
            &item,
            &op("replace"),
            move |State(state): State<AppState>,
                  ctx: Ctx,
                  Path((account_id, id)): Path<(String, String)>,
                  RequestData(data): RequestData| {
                replace(c, state, ctx, account_id, id, data)
            },
        )
        .summary(format!("Replace every public field of a {noun}"))
        .tag(tag)
        .auth()
        .request(schema_ref.clone())
        .response(stored.clone())
        .conflicts(),
        RouteSpec::new(
            Verb::Patch,
            &item,
            &op("patch"),
            move |State(state): State<AppState>,
                  ctx: Ctx,
                  Path((account_id, id)): Path<(String, String)>,
                  RequestData(data): RequestData| {
                patch(c, state, ctx, account_id, id, data)
            },
        )
        .summary(format!(
            "Deep-merge fields into a {noun} (null deletes a key)"
        ))
        .tag(tag)
        .auth()
        .request(json!({"type": "object"}))
        .response(stored)
        .conflicts(),
        RouteSpec::new(
            Verb::Delete,
            &item,
            &op("delete"),
            move |State(state): State<AppState>,
                  ctx: Ctx,
                  Path((account_id, id)): Path<(String, String)>| {
                delete(c, state, ctx, account_id, id)
            },
        )
        .summary(format!(
            "Delete a {noun} (soft delete; returns the document)"
        ))
        .tag(tag)
        .auth()
        .response(deleted)
        .conflicts(),
    ]
}

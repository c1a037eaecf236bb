//! `GET /v2/schemas`, `GET /v2/schemas/<collection>` and `GET /v2/schemas/callflows.<module>`:
//! the JSON schemas the validator uses, served as Crossbar does (no token needed).

use super::envelope::{ApiError, Reply};
use super::routes::{RouteSpec, Verb};
use crate::documents::collections;
use axum::extract::Path;
use serde_json::{Value, json};

/// Every schema name served: each collection, `metaflows`, then `callflows.<module>` for each
/// module.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = collections().iter().map(|c| c.name.to_string()).collect();
    names.push(crate::documents::metaflows::METAFLOWS_COLLECTION.to_string());
    names.extend(crate::modules::names().map(|m| format!("callflows.{m}")));
    names
}

/// A schema by name.
pub fn schema(name: &str) -> Option<Value> {
    if let Some(collection) = crate::documents::collection(name) {
        return Some((collection.schema)());
    }
    if name == crate::documents::metaflows::METAFLOWS_COLLECTION {
        return Some(crate::documents::metaflows::schema());
    }
    let module = name.strip_prefix("callflows.")?;
    crate::modules::get(module).map(|entry| entry.schema.clone())
}

async fn list_schemas() -> Reply {
    Reply::ok(json!(names()))
}

async fn get_schema(Path(name): Path<String>) -> Result<Reply, ApiError> {
    schema(&name).map(Reply::ok).ok_or(ApiError::NotFound(name))
}

/// The schema routes.
pub fn routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec::new(Verb::Get, "/v2/schemas", "list_schemas", list_schemas)
            .summary("Names of the served JSON schemas")
            .tag("schemas")
            .response(json!({"type": "array", "items": {"type": "string"}})),
        RouteSpec::new(Verb::Get, "/v2/schemas/{name}", "get_schema", get_schema)
            .summary(
                "A JSON schema: a collection (`devices`...), `metaflows` or `callflows.<module>`",
            )
            .tag("schemas")
            .response(json!({"type": "object"})),
    ]
}

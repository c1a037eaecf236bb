//! `GET /v2/openapi.json`: an OpenAPI 3.1 document generated from the route table
//! ([`super::routes::table`]) — the same list the router is built from — plus the real JSON
//! schemas of the collections and modules. Nothing here is written per route by hand.
//!
//! OpenAPI 3.1 is used because its schema object is JSON Schema, so the seed schema (with
//! `patternProperties`, `propertyNames`) is embedded as is; only `#/definitions/...` references
//! are re-pointed at `#/components/schemas/...`.

use super::envelope::Reply;
use super::routes::{RouteSpec, Verb, table};
use crate::documents::collections;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| document(&table()));

async fn get_openapi() -> Reply {
    Reply::ok(DOCUMENT.clone()).raw()
}

/// The OpenAPI route itself (it is in the table, so it documents itself).
pub fn routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec::new(Verb::Get, "/v2/openapi.json", "get_openapi", get_openapi)
            .summary("This OpenAPI document")
            .tag("meta")
            .raw(&["application/json"])
            .response(json!({"type": "object"})),
    ]
}

/// Re-points `#/definitions/X` references at `#/components/schemas/X` (iteratively).
fn rewrite_refs(value: &mut Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref") {
                    if let Some(name) = r.strip_prefix("#/definitions/") {
                        *r = format!("#/components/schemas/{name}");
                    }
                }
                stack.extend(map.values_mut());
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// Adds a schema (and its hoisted `definitions`) to `components.schemas`.
fn add_schema(schemas: &mut Map<String, Value>, name: &str, mut schema: Value) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        if let Some(Value::Object(definitions)) = object.remove("definitions") {
            for (def_name, mut def) in definitions {
                rewrite_refs(&mut def);
                schemas.insert(def_name, def);
            }
        }
    }
    rewrite_refs(&mut schema);
    schemas.insert(name.to_string(), schema);
}

fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}})
}

fn operation(route: &RouteSpec) -> Value {
    let mut parameters: Vec<Value> = path_params(&route.path)
        .into_iter()
        .map(|name| {
            let schema = if name == "account_id" {
                json!({"type": "string", "pattern": "^[0-9a-f]{32}$"})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    let mut families = Vec::new();
    for q in &route.query {
        if q.name.ends_with('*') {
            families.push(format!("- `{}`: {}", q.name, q.description));
        } else {
            parameters.push(json!({"name": q.name, "in": "query", "required": false,
                "description": q.description, "schema": q.schema}));
        }
    }

    let mut responses = Map::new();
    let success = match route.raw {
        Some(content_types) => {
            let content: Map<String, Value> = content_types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": route.response})))
                .collect();
            json!({"description": "OK", "content": content})
        }
        None => json!({"description": "Success", "content": {"application/json": {"schema": {
            "allOf": [{"$ref": "#/components/schemas/SuccessEnvelope"},
                      {"type": "object", "properties": {"data": route.response}}]}}}}),
    };
    responses.insert(route.status.to_string(), success);
    if route.request.is_some() || !route.query.is_empty() {
        responses.insert(
            "400".into(),
            error_response("Validation error (per-field details in data)"),
        );
    }
    if route.auth {
        responses.insert(
            "401".into(),
            error_response("Missing, invalid or expired token"),
        );
        if route.path.contains("{account_id}") {
            responses.insert("403".into(), error_response("Token of another account"));
        }
    }
    if route.path.contains('{') {
        responses.insert("404".into(), error_response("Unknown id (bad_identifier)"));
    }
    if route.conflicts {
        responses.insert(
            "409".into(),
            error_response("If-Match names a stale revision"),
        );
    }
    if route.request.is_some() {
        responses.insert("413".into(), error_response("Body larger than the limit"));
        responses.insert(
            "408".into(),
            error_response("The body did not arrive within body_timeout"),
        );
    }
    for (status, description) in &route.errors {
        let mut response = error_response(description);
        if *status == 429 {
            response["headers"] = json!({"Retry-After": {"required": true,
                "description": "Seconds until a login from this address is tried again",
                "schema": {"type": "integer", "minimum": 1}}});
        }
        responses.insert(status.to_string(), response);
    }
    responses.insert(
        "405".into(),
        error_response("Verb not supported on this path"),
    );
    responses.insert(
        "500".into(),
        error_response("Internal error (see X-Request-Id)"),
    );

    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": parameters,
        "responses": responses,
        "security": if route.auth { json!([{"authToken": []}, {"bearerAuth": []}]) } else { json!([]) },
    });
    if let Some(object) = op.as_object_mut() {
        if !families.is_empty() {
            object.insert(
                "description".into(),
                Value::String(format!(
                    "Filters (any number, AND-combined; dotted keys allowed):\n{}",
                    families.join("\n")
                )),
            );
        }
        match (&route.request, route.raw_request) {
            (Some(request), Some(types)) => {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": request})))
                    .collect();
                object.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": content}),
                );
            }
            (Some(request), None) => {
                object.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["data"], "properties": {"data": request}}}}}),
                );
            }
            _ => {}
        }
    }
    op
}

/// Builds the document from a route table.
pub fn document(routes: &[RouteSpec]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let item = paths
            .entry(route.path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(item) = item.as_object_mut() {
            item.insert(route.verb.openapi_key().to_string(), operation(route));
        }
    }

    let mut schemas = Map::new();
    for collection in collections() {
        add_schema(&mut schemas, collection.name, (collection.schema)());
    }
    for name in crate::modules::names() {
        if let Some(entry) = crate::modules::get(name) {
            add_schema(
                &mut schemas,
                &format!("callflows.{name}"),
                entry.schema.clone(),
            );
        }
    }
    schemas.insert(
        "SuccessEnvelope".into(),
        json!({"type": "object", "required": ["status", "request_id", "data"], "properties": {
            "auth_token": {"type": "string"}, "status": {"type": "string", "enum": ["success"]},
            "request_id": {"type": "string"}, "revision": {"type": "string"}, "data": {},
            "timestamp": {"type": "string"}, "version": {"type": "string"}, "node": {"type": "string"},
            "page_size": {"type": "integer"}, "start_key": {"type": "string"}, "next_start_key": {"type": "string"}}}),
    );
    schemas.insert(
        "ErrorEnvelope".into(),
        json!({"type": "object", "required": ["status", "error", "message", "request_id", "data"], "properties": {
            "auth_token": {"type": "string"}, "status": {"type": "string", "enum": ["error"]},
            "error": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"},
            "data": {"type": "object"}, "timestamp": {"type": "string"}, "version": {"type": "string"},
            "node": {"type": "string"}}}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "callflowd",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Kazoo-compatible (Crossbar v2) API of callflowd. Requests carry {\"data\":{...}}; replies are Kazoo envelopes. Get a token with PUT /v2/api_auth."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "authToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_real_schemas() {
        let routes = table();
        let doc = document(&routes);
        for route in &routes {
            assert!(
                doc["paths"][&route.path][route.verb.openapi_key()].is_object(),
                "{} missing",
                route.path
            );
        }
        let action = &doc["components"]["schemas"]["callflows.action"];
        assert_eq!(
            action["properties"]["children"]["patternProperties"][".+"]["$ref"],
            "#/components/schemas/callflows.action"
        );
        assert!(doc["components"]["schemas"]["callflows.play"].is_object());
        assert!(!doc.to_string().contains("#/definitions/"));
    }
}

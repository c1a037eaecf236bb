//! The route table: the single list both the axum router and the OpenAPI document are built
//! from, so the documentation cannot drift from what is served.
//!
//! Each [`RouteSpec`] pairs a verb and path with its handler (the verb given once, used for both
//! the axum method filter and the OpenAPI operation) and the facts the OpenAPI document needs:
//! summary, whether a token is required, the request/response `data` schemas and the success
//! status.

use super::AppState;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Value, json};

/// The verbs the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read.
    Get,
    /// Crossbar create.
    Put,
    /// Crossbar replace.
    Post,
    /// Crossbar deep merge.
    Patch,
    /// Crossbar (soft) delete.
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Put => MethodFilter::PUT,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// Lowercase name, as OpenAPI path items key operations.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Put => "put",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// A documented query parameter.
#[derive(Debug, Clone)]
pub struct QueryParam {
    /// Name (`page_size`); a name ending in `*` documents a family (`filter_*`).
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its JSON schema.
    pub schema: Value,
}

/// One served route.
pub struct RouteSpec {
    /// The verb.
    pub verb: Verb,
    /// The axum path, `{param}` style (also valid OpenAPI).
    pub path: String,
    /// OpenAPI `operationId`.
    pub operation_id: String,
    /// One-line summary.
    pub summary: String,
    /// OpenAPI tag (collection / area).
    pub tag: String,
    /// Whether a token is required (adds the auth layer and the 401/403 responses).
    pub auth: bool,
    /// Schema of the request envelope's `data`, when the route reads a body.
    pub request: Option<Value>,
    /// Schema of the success envelope's `data`.
    pub response: Value,
    /// Success status.
    pub status: u16,
    /// Documented query parameters.
    pub query: Vec<QueryParam>,
    /// The response is not a Kazoo envelope (OpenAPI document, Prometheus text): the content
    /// types it may have.
    pub raw: Option<&'static [&'static str]>,
    /// The request body is not a JSON envelope: its accepted content types (media uploads,
    /// mod_xml_curl's form posts); the request schema then describes that body.
    pub raw_request: Option<&'static [&'static str]>,
    /// Whether writes may answer 409 (If-Match) — documented only.
    pub conflicts: bool,
    /// Further documented error statuses (415 of an upload, the directory's 401/403).
    pub errors: Vec<(u16, &'static str)>,
    /// The handler for this verb.
    pub(crate) handler: MethodRouter<AppState>,
}

impl RouteSpec {
    /// A route for `verb path` served by `handler`.
    pub fn new<H, T>(verb: Verb, path: impl Into<String>, operation_id: &str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        RouteSpec {
            verb,
            path: path.into(),
            operation_id: operation_id.to_string(),
            summary: String::new(),
            tag: String::new(),
            auth: false,
            request: None,
            response: json!({}),
            status: 200,
            query: Vec::new(),
            raw: None,
            raw_request: None,
            conflicts: false,
            errors: Vec::new(),
            handler: on(verb.filter(), handler),
        }
    }

    /// Sets the summary.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Sets the tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }

    /// Requires a token.
    pub fn auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// The request `data` schema.
    pub fn request(mut self, schema: Value) -> Self {
        self.request = Some(schema);
        self
    }

    /// The response `data` schema.
    pub fn response(mut self, schema: Value) -> Self {
        self.response = schema;
        self
    }

    /// The success status (default 200).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, description: &'static str, schema: Value) -> Self {
        self.query.push(QueryParam {
            name,
            description,
            schema,
        });
        self
    }

    /// Marks the response as raw (not enveloped), of one of these content types.
    pub fn raw(mut self, content_types: &'static [&'static str]) -> Self {
        self.raw = Some(content_types);
        self
    }

    /// Marks the request body as raw (not an envelope), of these content types.
    pub fn raw_request(mut self, content_types: &'static [&'static str], schema: Value) -> Self {
        self.raw_request = Some(content_types);
        self.request = Some(schema);
        self
    }

    /// Documents another error status.
    pub fn error(mut self, status: u16, description: &'static str) -> Self {
        self.errors.push((status, description));
        self
    }

    /// Documents the 409 of a stale `If-Match`.
    pub fn conflicts(mut self) -> Self {
        self.conflicts = true;
        self
    }
}

/// Every route the service serves, in documentation order.
pub fn table() -> Vec<RouteSpec> {
    let mut routes = Vec::new();
    routes.extend(super::auth_routes());
    routes.extend(super::accounts::routes());
    for collection in crate::documents::collections() {
        routes.extend(super::documents::routes(collection));
    }
    routes.extend(super::media::routes());
    routes.extend(super::metaflows::routes());
    routes.extend(super::directory::routes());
    routes.extend(super::simulate::routes());
    routes.extend(super::schemas::routes());
    routes.extend(super::openapi::routes());
    routes.extend(super::metrics_routes());
    routes
}

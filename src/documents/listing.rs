//! Listing: Crossbar's filters and pagination over one account's collection.
//!
//! - Ascending by id; `page_size` (default [`DEFAULT_PAGE_SIZE`]); `start_key` (as returned in
//!   `next_start_key`, an opaque base64url string; a raw id is accepted too); `next_start_key`
//!   absent on the last page; `paginate=false` returns everything without page keys.
//! - Filters, AND-combined, dotted keys allowed: `filter_<k>=v` (a repeated key means any-of;
//!   an array value matches when any element does), `filter_not_<k>=v`, `has_key`,
//!   `key_missing`, `has_value`, `missing_value`, `created_from/to`, `modified_from/to`
//!   (Gregorian seconds). Unknown parameters are ignored (cache-busters like `_=<ms>`).

use super::{Collection, DocError};
use crate::callflow::errors::FieldErrors;
use crate::store::{ListRequest, Store, StoredDoc};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// Crossbar's `pagination_page_size` default.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest `page_size` honoured (bigger requests are capped).
pub const MAX_PAGE_SIZE: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Equals(String, Vec<String>),
    NotEquals(String, Vec<String>),
    HasKey(String),
    KeyMissing(String),
    HasValue(String),
    MissingValue(String),
    CreatedFrom(u64),
    CreatedTo(u64),
    ModifiedFrom(u64),
    ModifiedTo(u64),
}

/// Parsed listing parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ListParams {
    /// `None` when `paginate=false`.
    pub page_size: Option<usize>,
    /// The client's `start_key`, echoed back.
    pub start_key: Option<String>,
    /// The id the page starts at (decoded `start_key`).
    start_id: Option<String>,
    filters: Vec<Filter>,
}

impl Default for ListParams {
    fn default() -> Self {
        ListParams {
            page_size: Some(DEFAULT_PAGE_SIZE),
            start_key: None,
            start_id: None,
            filters: Vec::new(),
        }
    }
}

/// One page of summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    /// The summaries.
    pub items: Vec<Value>,
    /// Whether page keys belong in the envelope.
    pub paginated: bool,
    /// Echo of the request's `start_key`.
    pub start_key: Option<String>,
    /// Opaque key of the next page, `None` on the last page.
    pub next_start_key: Option<String>,
}

/// Encodes an id as an opaque `next_start_key`.
pub fn encode_start_key(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn decode_start_key(key: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(key)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|id| crate::util::is_valid_id(id))
        .or_else(|| crate::util::is_valid_id(key).then(|| key.to_string()))
}

impl ListParams {
    /// Parses query pairs (already percent-decoded). Bad values give a 400 `data`.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self, FieldErrors> {
        let mut params = ListParams::default();
        let mut errors = FieldErrors::new();
        let mut page_size = None;
        let mut equals: Vec<(String, Vec<String>)> = Vec::new();
        let mut not_equals: Vec<(String, Vec<String>)> = Vec::new();
        let push = |list: &mut Vec<(String, Vec<String>)>, key: &str, value: &str| match list
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some((_, values)) => values.push(value.to_string()),
            None => list.push((key.to_string(), vec![value.to_string()])),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "page_size" => match value.parse::<usize>() {
                    Ok(n) if n > 0 => page_size = Some(n.min(MAX_PAGE_SIZE)),
                    _ => errors.add(
                        "page_size",
                        "minimum",
                        json!({"message": "page_size must be a positive integer", "value": value}),
                    ),
                },
                "paginate" => {
                    if value == "false" {
                        params.page_size = None;
                    }
                }
                "start_key" => match decode_start_key(value) {
                    Some(id) => {
                        params.start_key = Some(value.clone());
                        params.start_id = Some(id);
                    }
                    None => errors.add(
                        "start_key",
                        "invalid",
                        json!({"message": "start_key is not a key this server returned", "value": value}),
                    ),
                },
                "has_key" => params.filters.push(Filter::HasKey(value.clone())),
                "key_missing" => params.filters.push(Filter::KeyMissing(value.clone())),
                "has_value" => params.filters.push(Filter::HasValue(value.clone())),
                "missing_value" => params.filters.push(Filter::MissingValue(value.clone())),
                "created_from" | "created_to" | "modified_from" | "modified_to" => match value.parse::<u64>() {
                    Ok(n) => params.filters.push(match key.as_str() {
                        "created_from" => Filter::CreatedFrom(n),
                        "created_to" => Filter::CreatedTo(n),
                        "modified_from" => Filter::ModifiedFrom(n),
                        _ => Filter::ModifiedTo(n),
                    }),
                    Err(_) => errors.add(
                        key.clone(),
                        "type",
                        json!({"message": "Value did not match type(s): integer", "target": "integer", "value": value}),
                    ),
                },
                other => {
                    if let Some(path) = other.strip_prefix("filter_not_") {
                        push(&mut not_equals, path, value);
                    } else if let Some(path) = other.strip_prefix("filter_") {
                        push(&mut equals, path, value);
                    }
                }
            }
        }
        if params.page_size.is_some() {
            params.page_size = Some(page_size.unwrap_or(DEFAULT_PAGE_SIZE));
        }
        params
            .filters
            .extend(equals.into_iter().map(|(k, v)| Filter::Equals(k, v)));
        params
            .filters
            .extend(not_equals.into_iter().map(|(k, v)| Filter::NotEquals(k, v)));
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(errors)
        }
    }

    fn keeps(&self, doc: &StoredDoc) -> bool {
        self.filters.iter().all(|filter| filter_keeps(filter, doc))
    }
}

fn filter_keeps(filter: &Filter, doc: &StoredDoc) -> bool {
    let body = &doc.body;
    match filter {
        Filter::Equals(path, values) => {
            lookup(doc, path).is_some_and(|v| values.iter().any(|q| value_matches(&v, q)))
        }
        Filter::NotEquals(path, values) => {
            !lookup(doc, path).is_some_and(|v| values.iter().any(|q| value_matches(&v, q)))
        }
        Filter::HasKey(path) => lookup(doc, path).is_some(),
        Filter::KeyMissing(path) => lookup(doc, path).is_none(),
        Filter::HasValue(path) => lookup(doc, path).is_some_and(|v| has_value(&v)),
        Filter::MissingValue(path) => !lookup(doc, path).is_some_and(|v| has_value(&v)),
        Filter::CreatedFrom(t) => gregorian(body, "pvt_created") >= *t,
        Filter::CreatedTo(t) => gregorian(body, "pvt_created") <= *t,
        Filter::ModifiedFrom(t) => gregorian(body, "pvt_modified") >= *t,
        Filter::ModifiedTo(t) => gregorian(body, "pvt_modified") <= *t,
    }
}

fn gregorian(body: &Map<String, Value>, key: &str) -> u64 {
    body.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A dotted path into the document's public fields, `id` included (private fields are not
/// filterable, as clients never see them).
fn lookup<'a>(doc: &'a StoredDoc, path: &str) -> Option<Cow<'a, Value>> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    if first == "id" {
        return Some(Cow::Owned(Value::String(doc.id.clone())));
    }
    if crate::store::is_private_key(first) {
        return None;
    }
    let mut current = doc.body.get(first)?;
    for part in parts {
        current = match current {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(Cow::Borrowed(current))
}

fn has_value(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Query strings carry text: compare a JSON value to it as text; arrays match on any element.
fn value_matches(value: &Value, query: &str) -> bool {
    match value {
        Value::String(s) => s == query,
        Value::Number(n) => n.to_string() == query,
        Value::Bool(b) => (if *b { "true" } else { "false" }) == query,
        Value::Null => query == "null",
        Value::Array(items) => items
            .iter()
            .any(|item| !item.is_array() && value_matches(item, query)),
        Value::Object(_) => false,
    }
}

/// Runs a listing.
pub fn run(
    store: &dyn Store,
    collection: &Collection,
    account_id: &str,
    params: &ListParams,
) -> Result<ListResult, DocError> {
    let filter = |doc: &StoredDoc| params.keeps(doc);
    let page = store.list_docs(&ListRequest {
        account_id,
        collection: collection.name,
        start: params.start_id.as_deref(),
        limit: params.page_size,
        filter: &filter,
    })?;
    Ok(ListResult {
        items: page.docs.iter().map(collection.summary).collect(),
        paginated: params.page_size.is_some(),
        start_key: params.start_key.clone(),
        next_start_key: page.next.as_deref().map(encode_start_key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn doc(v: Value) -> StoredDoc {
        StoredDoc {
            id: "abc".into(),
            body: v.as_object().cloned().unwrap(),
        }
    }

    #[test]
    fn parses_and_filters() {
        let params = ListParams::from_query(&pairs(&[
            ("filter_not_numbers", "no_match"),
            ("filter_type", "mainUserCallflow"),
            ("filter_type", "baseGroup"),
            ("has_key", "flow.data.id"),
            ("_", "12345"),
        ]))
        .unwrap();
        assert_eq!(params.page_size, Some(DEFAULT_PAGE_SIZE));
        let keep =
            doc(json!({"numbers": ["1"], "type": "baseGroup", "flow": {"data": {"id": "x"}}}));
        assert!(params.keeps(&keep));
        let drop = doc(
            json!({"numbers": ["no_match"], "type": "baseGroup", "flow": {"data": {"id": "x"}}}),
        );
        assert!(!params.keeps(&drop));
        let drop = doc(json!({"numbers": ["1"], "type": "other", "flow": {"data": {"id": "x"}}}));
        assert!(!params.keeps(&drop));
    }

    #[test]
    fn start_keys_and_bad_values() {
        let key = encode_start_key("0123abcd");
        let params =
            ListParams::from_query(&pairs(&[("start_key", &key), ("paginate", "false")])).unwrap();
        assert_eq!(params.start_id.as_deref(), Some("0123abcd"));
        assert_eq!(params.page_size, None);
        assert!(ListParams::from_query(&pairs(&[("page_size", "0")])).is_err());
        assert!(ListParams::from_query(&pairs(&[("start_key", "%%%")])).is_err());
    }

    #[test]
    fn value_matching() {
        assert!(value_matches(&json!(5), "5"));
        assert!(value_matches(&json!(true), "true"));
        assert!(value_matches(&json!(["a", "b"]), "b"));
        assert!(!value_matches(&json!({"a": 1}), "a"));
    }
}

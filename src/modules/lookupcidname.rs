//! `lookupcidname`: names the caller from the account's `lists` ("Acme Corp" for 555-0100), so
//! phones show a name even when the carrier sends only a number.
//!
//! A list document holds `entries`: `{"number": "<prefix>", "displayname": "..."}` (longest prefix
//! of the caller's number wins) and `{"pattern": "<regex>", "displayname": "..."}` (tried after
//! every prefix, in order). Lists are searched in the order given.
//! ESL: `execute set effective_caller_id_name=<name>` when found. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `lookupcidname` module.
pub struct LookupCidName;

/// `lookupcidname` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// List ids, searched in order.
    pub lists: Vec<String>,
}

/// The name for `number` from list documents: longest prefix first, then patterns.
pub fn lookup(lists: &[Value], number: &str) -> Option<String> {
    let entries = || {
        lists
            .iter()
            .filter_map(|l| l.get("entries").and_then(Value::as_array))
            .flatten()
    };
    let name_of = |e: &Value| {
        e.get("displayname")
            .or_else(|| e.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let by_prefix = entries()
        .filter_map(|e| {
            let prefix = e.get("number")?.as_str()?;
            (!prefix.is_empty() && number.starts_with(prefix)).then_some((prefix.len(), e))
        })
        .fold(None::<(usize, &Value)>, |best, (len, e)| match best {
            Some((b, _)) if b >= len => best,
            _ => Some((len, e)),
        });
    if let Some(name) = by_prefix.and_then(|(_, e)| name_of(e)) {
        return Some(name);
    }
    entries().find_map(|e| {
        let pattern = e.get("pattern")?.as_str()?;
        let regex = regex::Regex::new(pattern).ok()?;
        regex.is_match(number).then(|| name_of(e)).flatten()
    })
}

impl CallflowModule for LookupCidName {
    const NAME: &'static str = "lookupcidname";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Set the caller-ID name from the account's lists",
            "required": ["lists"],
            "properties": {
                "lists": {"type": "array", "minItems": 1, "maxItems": 20,
                          "items": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let number = call
            .channel_header("Caller-Caller-ID-Number")
            .unwrap_or_default()
            .to_string();
        let lists: Vec<Value> = data
            .lists
            .iter()
            .filter_map(|id| {
                call.ctx
                    .store
                    .document(&call.account_id, "lists", id)
                    .ok()
                    .flatten()
            })
            .collect();
        if let Some(name) = lookup(&lists, &number) {
            let name = name.replace(['\r', '\n'], " ");
            call.set_var("effective_caller_id_name", &name).await?;
            call.kvs
                .insert("rewrite_cid_name".into(), Value::String(name));
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_then_pattern() {
        let lists = vec![
            json!({"entries": [{"number": "1415", "displayname": "San Francisco"},
                                {"number": "1415555", "displayname": "Acme"},
                                {"pattern": "^1800", "displayname": "Toll free"}]}),
        ];
        assert_eq!(lookup(&lists, "14155550100").as_deref(), Some("Acme"));
        assert_eq!(
            lookup(&lists, "14151230000").as_deref(),
            Some("San Francisco")
        );
        assert_eq!(lookup(&lists, "18001234567").as_deref(), Some("Toll free"));
        assert_eq!(lookup(&lists, "33123"), None);
    }
}

//! `dynamic_cid`: lets a caller choose the caller ID for one outbound call, typically from a
//! feature code like `*69` + `<cid>` + `<number>`, then routes the rest of the digits.
//!
//! Actions:
//! - `static`: use `caller_id.name/number`; the capture group is the number to call;
//! - `manual`: play `media_id` (default: "enter the number"), collect `min_digits..max_digits` as
//!   the caller-ID number (must match `whitelist_regex`); the capture group is the number to call;
//! - `list` / `lists`: the list document `id` holds `entries` with `key`, `cid_number`,
//!   `cid_name`; the entry whose `key` prefixes the capture group sets the caller ID, and the
//!   digits after the key are the number to call.
//!
//! ESL: `execute set effective_caller_id_name=...`, `execute set effective_caller_id_number=...`
//! (manual: `execute answer`, `execute playback <prompt>` first). Then the number is routed
//! through the account's callflows and branched to. Children: `_` when no caller ID could be
//! chosen or no callflow routes the number.

use super::play::answer_if_needed;
use super::set_cid;
use super::{CallflowModule, Next};
use crate::callflow::errors::FieldErrors;
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded, Collect};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The `dynamic_cid` module.
pub struct DynamicCid;

/// Static caller ID.
#[derive(Debug, Deserialize, Default)]
pub struct CallerId {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Number.
    #[serde(default)]
    pub number: String,
}

/// `dynamic_cid` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `manual`, `static`, `list` or `lists`.
    #[serde(default = "manual")]
    pub action: String,
    /// Caller ID for `static`.
    #[serde(default)]
    pub caller_id: CallerId,
    /// List id for `list`/`lists`.
    #[serde(default)]
    pub id: Option<String>,
    /// Prompt for `manual`.
    #[serde(default)]
    pub media_id: Option<String>,
    /// Fewest digits of a manual caller ID.
    #[serde(default = "one")]
    pub min_digits: usize,
    /// Most digits of a manual caller ID.
    #[serde(default = "ten")]
    pub max_digits: usize,
    /// Wait between digits (ms).
    #[serde(default = "two_s")]
    pub interdigit_timeout: u64,
    /// A manual caller ID must match this.
    #[serde(default = "any_digits")]
    pub whitelist_regex: String,
}

fn manual() -> String {
    "manual".into()
}
fn one() -> usize {
    1
}
fn ten() -> usize {
    10
}
fn two_s() -> u64 {
    2000
}
fn any_digits() -> String {
    "\\d+".into()
}

/// Default prompt for `manual`.
pub const ENTER_NUMBER_PROMPT: &str = "ivr/ivr-please_enter_the_number_where_we_can_reach_you.wav";

/// Splits captured digits with a list: (cid number, cid name, number to call).
pub fn split_with_list(list: &Value, digits: &str) -> Option<(String, String, String)> {
    let entries = list.get("entries")?.as_array()?;
    let (key, entry) = entries
        .iter()
        .filter_map(|e| {
            let key = e.get("key")?.as_str()?;
            (!key.is_empty() && digits.starts_with(key)).then_some((key, e))
        })
        .max_by_key(|(key, _)| key.len())?;
    let number = entry.get("cid_number")?.as_str()?.to_string();
    let name = entry
        .get("cid_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some((number, name, digits[key.len()..].to_string()))
}

impl CallflowModule for DynamicCid {
    const NAME: &'static str = "dynamic_cid";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Choose the caller ID for this call, then route the dialled digits",
            "properties": {
                "action": {"type": "string", "enum": ["manual", "static", "list", "lists"], "default": "manual"},
                "caller_id": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 128},
                    "number": {"type": "string", "maxLength": 64, "pattern": "^[^\\s]*$"}
                }},
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "media_id": {"type": "string", "minLength": 1, "maxLength": 2048},
                "min_digits": {"type": "integer", "minimum": 1, "maximum": 32, "default": 1},
                "max_digits": {"type": "integer", "minimum": 1, "maximum": 32, "default": 10},
                "interdigit_timeout": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 2000},
                "whitelist_regex": {"type": "string", "minLength": 1, "maxLength": 256, "default": "\\d+"}
            }
        })
    }

    fn validate_extra(data: &Value, path: &str, errors: &mut FieldErrors) {
        super::branch_bnumber::validate_regexes(data, path, &["whitelist_regex"], errors);
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let captured = call
            .kvs
            .get("capture_group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let chosen = match data.action.as_str() {
            "static" => Some((
                data.caller_id.number.clone(),
                data.caller_id.name.clone(),
                captured,
            )),
            "list" | "lists" => {
                let list = match &data.id {
                    Some(id) => call
                        .ctx
                        .store
                        .document(&call.account_id, "lists", id)
                        .ok()
                        .flatten(),
                    None => None,
                };
                list.and_then(|l| split_with_list(&l, &captured))
            }
            _ => {
                answer_if_needed(call).await?;
                let prompt = data
                    .media_id
                    .clone()
                    .unwrap_or_else(|| ENTER_NUMBER_PROMPT.to_string());
                if let super::media::Media::Playback(path) = super::media::resolve(&prompt) {
                    call.execute_long("playback", &path).await?;
                }
                let digits = call
                    .collect_digits(&Collect {
                        max_digits: data.max_digits.max(1),
                        timeout: Duration::from_millis(data.interdigit_timeout.max(5000)),
                        interdigit: Duration::from_millis(data.interdigit_timeout),
                        terminators: "#".into(),
                    })
                    .await?;
                let allowed = regex::Regex::new(&format!("^(?:{})$", data.whitelist_regex))
                    .map(|r| r.is_match(&digits))
                    .unwrap_or(false);
                (digits.len() >= data.min_digits && allowed)
                    .then(|| (digits, data.caller_id.name.clone(), captured))
            }
        };
        let Some((cid_number, cid_name, destination)) = chosen else {
            tracing::info!(action = %data.action, "dynamic_cid could not choose a caller ID");
            return Ok(Next::default_child());
        };
        set_cid::apply(call, &cid_name, &cid_number).await?;
        if destination.is_empty() {
            return Ok(Next::default_child());
        }
        let route = call
            .ctx
            .store
            .routing()
            .lookup(&call.account_id, &destination);
        match route.and_then(|r| super::callflow::load(call, &r.callflow_id).map(|f| (r, f))) {
            Some((route, flow)) => {
                call.kvs.insert(
                    "capture_group".into(),
                    Value::String(route.capture_group.unwrap_or(destination)),
                );
                Ok(Next::Branch(Box::new(flow)))
            }
            None => Ok(Next::default_child()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split() {
        let list = json!({"entries": [{"key": "1", "cid_number": "5550001", "cid_name": "Main"},
                                       {"key": "12", "cid_number": "5550012"}]});
        assert_eq!(
            split_with_list(&list, "124155550100"),
            Some(("5550012".into(), String::new(), "4155550100".into()))
        );
        assert_eq!(split_with_list(&list, "9"), None);
    }
}

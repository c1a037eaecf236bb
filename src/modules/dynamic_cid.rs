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
                super::media::play(call, &prompt).await?;
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
        match super::callflow::route_number(call, &destination) {
            Some(flow) => Ok(Next::Branch(Box::new(flow))),
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

    use crate::engine::testkit::{
        add_callflow, apps, branches, node, run_with_store, script_to, store_for,
    };
    use crate::modules::bridge::tests::{assert_caller_hung_up, play, put};
    use crate::store::memory::MemStore;
    use std::sync::Arc;
    use std::time::Duration;

    const FEATURE: &str = "cf0000000000000000000000000000d1";
    const TARGET: &str = "cf0000000000000000000000000000d2";
    const LIST: &str = "b0000000000000000000000000000009";

    /// `*69<digits>` runs dynamic_cid with `data`; 2001 plays target.wav.
    fn store(data: Value) -> Arc<MemStore> {
        let store = store_for(node("answer", json!({}), json!({})));
        add_callflow(
            &store,
            FEATURE,
            &[],
            &[r"^\*69(\d+)$"],
            node("dynamic_cid", data, json!({"_": play("default.wav")})),
        );
        add_callflow(&store, TARGET, &["2001"], &[], play("target.wav"));
        put(
            &store,
            "lists",
            LIST,
            json!({"entries": [{"key": "1", "cid_number": "5550001", "cid_name": "Main"},
                               {"key": "2", "cid_number": "5550002", "cid_name": "Support"}]}),
        );
        store
    }

    /// The dialled callflow ran, then (Kazoo's branch stack) the dynamic_cid node's `_`.
    fn ran_target_then_returned(sim: &crate::engine::simulate::Simulation) {
        let all = apps(sim);
        assert_eq!(
            all[all.len() - 2..],
            ["playback target.wav", "playback default.wav"],
            "{all:?}"
        );
        assert_eq!(branches(sim)[0], "branch -> play");
    }

    fn cid_commands(sim: &crate::engine::simulate::Simulation) -> Vec<String> {
        apps(sim)
            .into_iter()
            .filter(|a| a.contains("effective_caller_id"))
            .collect()
    }

    #[tokio::test]
    async fn static_caller_id_then_the_captured_number_is_routed() {
        let sim = run_with_store(
            store(json!({"action": "static", "caller_id": {"name": "Sales", "number": "5550100"}})),
            script_to("*692001"),
        )
        .await;
        assert_eq!(
            cid_commands(&sim),
            [
                "set effective_caller_id_name=Sales",
                "set effective_caller_id_number=5550100"
            ]
        );
        ran_target_then_returned(&sim);
    }

    #[tokio::test]
    async fn a_list_entry_picks_the_caller_id_by_key() {
        let sim = run_with_store(
            store(json!({"action": "list", "id": LIST})),
            script_to("*6922001"),
        )
        .await;
        assert_eq!(
            cid_commands(&sim),
            [
                "set effective_caller_id_name=Support",
                "set effective_caller_id_number=5550002"
            ]
        );
        ran_target_then_returned(&sim);

        // No entry for the key: `_`, caller ID untouched.
        let sim = run_with_store(
            store(json!({"action": "list", "id": LIST})),
            script_to("*6932001"),
        )
        .await;
        assert!(cid_commands(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn manual_entry_must_pass_the_whitelist() {
        let data = json!({"action": "manual", "media_id": "cid/enter.wav",
                          "whitelist_regex": "555\\d{4}", "interdigit_timeout": 1000});
        let sim = run_with_store(
            store(data.clone()),
            script_to("*692001")
                .dtmf("5550123#@playback+50ms")
                .expect("digits"),
        )
        .await;
        assert_eq!(
            apps(&sim)[..2],
            ["answer".to_string(), "playback cid/enter.wav".into()]
        );
        assert_eq!(
            cid_commands(&sim),
            [
                "unset effective_caller_id_name",
                "set effective_caller_id_number=5550123"
            ]
        );
        ran_target_then_returned(&sim);

        let sim = run_with_store(
            store(data),
            script_to("*692001")
                .dtmf("4440123#@playback+50ms")
                .expect("digits"),
        )
        .await;
        assert!(cid_commands(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback default.wav")
        );
    }

    #[tokio::test]
    async fn manual_entry_with_too_few_digits_continues() {
        let data = json!({"action": "manual", "min_digits": 7, "interdigit_timeout": 1000});
        let sim = run_with_store(
            store(data),
            script_to("*692001")
                .dtmf("555#@playback+50ms")
                .expect("digits"),
        )
        .await;
        assert_eq!(apps(&sim)[1], format!("playback {ENTER_NUMBER_PROMPT}"));
        assert!(cid_commands(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn caller_hanging_up_during_manual_entry_ends_the_flow() {
        let sim = run_with_store(
            store(json!({"action": "manual"})),
            script_to("*692001").hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert_caller_hung_up(&sim);
        assert!(cid_commands(&sim).is_empty());
    }
}

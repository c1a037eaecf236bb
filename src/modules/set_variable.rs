//! `set_variable`: sets one channel variable, on this leg or exported to bridged legs too.
//!
//! ESL: `execute set <variable>=<value>` (`channel: a`) or `execute export <variable>=<value>`
//! (`channel: both`). FreeSWITCH expands `${...}` in the value (e.g. `${strftime(%H)}`); the
//! expanded value is what later modules see. Children: `_`.

use super::set_variables::{CAV_KEY, value_text};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The `set_variable` module.
pub struct SetVariable;

/// `set_variable` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Channel variable name.
    pub variable: String,
    /// Its value.
    #[serde(default)]
    pub value: Value,
    /// `a` (this leg) or `both` (export).
    #[serde(default = "a_leg")]
    pub channel: String,
}

fn a_leg() -> String {
    "a".into()
}

impl CallflowModule for SetVariable {
    const NAME: &'static str = "set_variable";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Set one channel variable",
            "required": ["variable"],
            "properties": {
                "variable": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_\\-]{0,63}$"},
                "value": {"type": ["string", "number", "boolean"], "default": ""},
                "channel": {"type": "string", "enum": ["a", "both"], "default": "a"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let value = value_text(&data.value).replace(['\r', '\n'], " ");
        let completion = if data.channel == "both" {
            call.export_var(&data.variable, &value).await?
        } else {
            call.set_var(&data.variable, &value).await?
        };
        // FreeSWITCH expands `${...}` in the value; keep what it actually set.
        let stored = completion
            .var(&data.variable)
            .map(|v| Value::String(v.to_string()))
            .unwrap_or(data.value);
        if let Value::Object(vars) = call
            .kvs
            .entry(CAV_KEY.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            vars.insert(data.variable, stored);
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;

    fn set_then_branch(data: serde_json::Value, variable: &str) -> serde_json::Value {
        node(
            "set_variable",
            data,
            json!({"_": node("branch_variable", json!({"variable": variable}), json!({
                "blue": marker("blue", json!({})),
                "1001": marker("caller", json!({})),
                "_": marker("default", json!({}))
            }))}),
        )
    }

    #[tokio::test]
    async fn sets_on_the_a_leg_and_branch_variable_sees_it() {
        let flow = set_then_branch(json!({"variable": "colour", "value": "blue"}), "colour");
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["set colour=blue", "set marker=blue"]);
        assert_eq!(branches(&sim)[..2], ["_", "blue"]);
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn channel_both_exports() {
        let flow = set_then_branch(
            json!({"variable": "colour", "value": "blue", "channel": "both"}),
            "colour",
        );
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["export colour=blue", "set marker=blue"]);
    }

    #[tokio::test]
    async fn the_expanded_value_is_what_later_modules_see() {
        let flow = set_then_branch(
            json!({"variable": "who", "value": "${sip_from_user}"}),
            "who",
        );
        let sim = run(flow, script()).await;
        assert_eq!(
            apps(&sim),
            ["set who=${sip_from_user}", "set marker=caller"]
        );
    }

    #[tokio::test]
    async fn an_unmatched_value_takes_the_default_child() {
        let flow = set_then_branch(json!({"variable": "colour", "value": "red"}), "colour");
        let sim = run(flow, script()).await;
        assert_eq!(markers(&sim), ["default"]);
    }

    #[tokio::test]
    async fn caller_hangup_ends_the_flow() {
        let flow = set_then_branch(json!({"variable": "colour", "value": "blue"}), "colour");
        let sim = run(flow, caller_gone_before_first_app()).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(apps(&sim), ["set colour=blue"]);
        assert_eq!(modules_run(&sim), ["set_variable"]);
    }
}

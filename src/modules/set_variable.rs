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

//! `set_variables`: sets custom variables on the call (Kazoo's custom application vars).
//!
//! ESL: one `execute multiset ^^<sep><k>=<v><sep>...` (or `execute export <k>=<v>` per variable
//! when `export` is true, so bridged legs inherit them). The values are also kept in the call's
//! store so `branch_variable` can read them without a round trip. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The `set_variables` module.
pub struct SetVariables;

/// `set_variables` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Variable name -> value.
    pub custom_application_vars: Map<String, Value>,
    /// Export to bridged legs too.
    #[serde(default)]
    pub export: bool,
}

/// Kvs key holding the custom application variables.
pub const CAV_KEY: &str = "custom_application_vars";

/// A variable value as FreeSWITCH text.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One `multiset` argument for several variables, picking a separator no value contains.
pub fn multiset_arg(pairs: &[(String, String)]) -> Option<String> {
    let separator = ['|', '~', '!', '`', '\u{1}'].into_iter().find(|sep| {
        pairs
            .iter()
            .all(|(k, v)| !k.contains(*sep) && !v.contains(*sep))
    })?;
    let mut arg = format!("^^{separator}");
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    arg.push_str(&body.join(&separator.to_string()));
    Some(arg)
}

impl CallflowModule for SetVariables {
    const NAME: &'static str = "set_variables";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Set custom variables on the call",
            "required": ["custom_application_vars"],
            "properties": {
                "custom_application_vars": {
                    "type": "object",
                    "maxProperties": 100,
                    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_\\-]{0,63}$"},
                    "additionalProperties": {"type": ["string", "number", "boolean"]}
                },
                "export": {"type": "boolean", "default": false}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let pairs: Vec<(String, String)> = data
            .custom_application_vars
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v).replace(['\r', '\n'], " ")))
            .collect();
        let mut last = None;
        if data.export {
            for (name, value) in &pairs {
                last = Some(call.export_var(name, value).await?);
            }
        } else if let Some(arg) = multiset_arg(&pairs) {
            if !pairs.is_empty() {
                last = Some(call.execute("multiset", &arg).await?);
            }
        } else {
            for (name, value) in &pairs {
                last = Some(call.set_var(name, value).await?);
            }
        }
        // Keep the values as FreeSWITCH expanded them (the last completion carries them all).
        let mut expanded = Map::new();
        for (name, value) in data.custom_application_vars {
            let actual = last
                .as_ref()
                .and_then(|c| c.var(&name))
                .map(|v| Value::String(v.to_string()))
                .unwrap_or(value);
            expanded.insert(name, actual);
        }
        let store = call
            .kvs
            .entry(CAV_KEY.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(existing) = store {
            existing.extend(expanded);
        }
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiset_picks_a_free_separator() {
        let pairs = vec![
            ("a".to_string(), "x|y".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        assert_eq!(multiset_arg(&pairs).unwrap(), "^^~a=x|y~b=2");
    }
}

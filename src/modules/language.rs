//! `language`: sets the call's language for prompts and `say`.
//!
//! ESL: `execute set default_language=<language>`. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `language` module.
pub struct Language;

/// `language` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `en`, `fr-ca`, ...
    pub language: String,
}

impl CallflowModule for Language {
    const NAME: &'static str = "language";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Set the call's language",
            "required": ["language"],
            "properties": {
                "language": {"type": "string", "pattern": "^[A-Za-z]{2}(-[A-Za-z]{2})?$"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let language = data.language.to_lowercase();
        call.set_var("default_language", &language).await?;
        call.kvs.insert("language".into(), Value::String(language));
        Ok(Next::default_child())
    }
}

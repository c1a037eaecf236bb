//! Metaflow `say`: reads a number or digits to one or both legs.
//! API: `uuid_broadcast <uuid> 'say::<lang> <type> <method> [<gender>] <text>' aleg|bleg|both`.
//! Children: `_`.

use super::{MetaNext, MetaflowModule, broadcast};
use crate::engine::call::{Call, CallEnded};
use crate::modules::say::{SAY_TYPES, say_arg};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `say` metaflow module.
pub struct Say;

/// `say` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// What to say.
    pub text: String,
    /// Language.
    #[serde(default = "en")]
    pub language: String,
    /// Say type.
    #[serde(rename = "type", default = "number")]
    pub say_type: String,
    /// Say method.
    #[serde(default = "pronounced")]
    pub method: String,
    /// Gender.
    #[serde(default)]
    pub gender: Option<String>,
    /// `self`, `peer` or `both`.
    #[serde(default = "self_leg")]
    pub leg: String,
}

fn en() -> String {
    "en".into()
}
fn number() -> String {
    "number".into()
}
fn pronounced() -> String {
    "pronounced".into()
}
fn self_leg() -> String {
    "self".into()
}

impl MetaflowModule for Say {
    const NAME: &'static str = "say";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Say a number or digits to one or both legs",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 256},
                "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Za-z]{2})?$", "default": "en"},
                "type": {"type": "string", "enum": SAY_TYPES, "default": "number"},
                "method": {"type": "string", "enum": ["pronounced", "iterated", "counted"], "default": "pronounced"},
                "gender": {"type": "string", "enum": ["masculine", "feminine", "neuter"]},
                "leg": {"type": "string", "enum": ["self", "peer", "both"], "default": "self"}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let arg = say_arg(
            &data.language,
            &data.say_type,
            &data.method,
            data.gender.as_deref(),
            &data.text,
        );
        broadcast(call, &format!("say::{arg}"), &data.leg).await?;
        Ok(MetaNext::default_child())
    }
}

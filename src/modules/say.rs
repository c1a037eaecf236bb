//! `say`: reads a number, date, digits... with FreeSWITCH's `say` app (Kazoo has no `cf_say`;
//! callflowd adds it because operators ask for it and FreeSWITCH already does the work).
//!
//! ESL: `execute say <language> <type> <method> [<gender>] <text>`. Children: `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `say` module.
pub struct Say;

/// `say` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// What to say (digits, a number, a date...).
    pub text: String,
    /// FreeSWITCH say module / language (`en`, `fr`, ...).
    #[serde(default = "english")]
    pub language: String,
    /// FreeSWITCH say type.
    #[serde(rename = "type", default = "number")]
    pub say_type: String,
    /// `pronounced`, `iterated` or `counted`.
    #[serde(default = "pronounced")]
    pub method: String,
    /// Grammatical gender, for languages that need it.
    #[serde(default)]
    pub gender: Option<String>,
}

fn english() -> String {
    "en".into()
}
fn number() -> String {
    "number".into()
}
fn pronounced() -> String {
    "pronounced".into()
}

/// FreeSWITCH's say types (switch_types.h `switch_say_type_t`).
pub const SAY_TYPES: [&str; 19] = [
    "number",
    "items",
    "persons",
    "messages",
    "currency",
    "time_measurement",
    "current_date",
    "current_time",
    "current_date_time",
    "telephone_number",
    "telephone_extension",
    "url",
    "ip_address",
    "email_address",
    "postal_address",
    "account_number",
    "name_spelled",
    "name_phonetic",
    "short_date_time",
];

/// The `say` argument string; shared with `audio_macro`.
pub fn say_arg(
    language: &str,
    say_type: &str,
    method: &str,
    gender: Option<&str>,
    text: &str,
) -> String {
    // `say` splits its argument on spaces: the text must be one word.
    let text: String = text.split_whitespace().collect::<Vec<_>>().join("");
    match gender {
        Some(g) if !g.is_empty() => {
            format!("{language} {say_type} {method} {} {text}", g.to_uppercase())
        }
        _ => format!("{language} {say_type} {method} {text}"),
    }
}

impl CallflowModule for Say {
    const NAME: &'static str = "say";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Say a number, date, digits... with FreeSWITCH's say engine",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 256},
                "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Za-z]{2})?$", "default": "en"},
                "type": {"type": "string", "enum": SAY_TYPES, "default": "number"},
                "method": {"type": "string", "enum": ["pronounced", "iterated", "counted"], "default": "pronounced"},
                "gender": {"type": "string", "enum": ["masculine", "feminine", "neuter"]}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let arg = say_arg(
            &data.language,
            &data.say_type,
            &data.method,
            data.gender.as_deref(),
            &data.text,
        );
        call.execute_long("say", &arg).await?;
        Ok(Next::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_four_or_five_arguments() {
        assert_eq!(
            say_arg("en", "number", "pronounced", None, "1 2 3"),
            "en number pronounced 123"
        );
        assert_eq!(
            say_arg("fr", "number", "counted", Some("feminine"), "1"),
            "fr number counted FEMININE 1"
        );
    }
}

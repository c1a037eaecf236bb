//! Metaflow `say`: reads a number or digits to one or both legs.
//! API: `uuid_broadcast <uuid> 'say::<lang> <type> <method> [<GENDER>] <text>' aleg|bleg|both`
//! (`aleg` when not bridged; spaces are removed from the text); `leg` is seen from whoever
//! pressed the code (the far end's `self` is `bleg`). Children: `_`.

use super::{MetaNext, MetaflowModule, broadcast, leg_from_here};
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
    /// `self`, `peer` or `both`, from the side of whoever pressed the code.
    #[serde(default = "self_leg")]
    pub leg: String,
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
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
        broadcast(
            call,
            &format!("say::{arg}"),
            leg_from_here(&data.leg, data.dtmf_leg.as_deref()),
        )
        .await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{apis, me, meta, one_code, run_bridged, said, said_line, secs};
    use serde_json::json;

    fn say_to(leg: &str) -> serde_json::Value {
        one_code(
            "1",
            meta(
                "say",
                json!({"text": "1 2 3", "type": "number", "method": "iterated",
                       "gender": "feminine", "language": "fr", "leg": leg}),
                json!({"_": said("said")}),
            ),
        )
    }

    #[tokio::test]
    async fn says_to_self_peer_or_both_legs_while_bridged() {
        let (to_self, to_peer, to_both) = tokio::join!(
            run_bridged(say_to("self"), secs(4), "*1@bridge+300ms"),
            run_bridged(say_to("peer"), secs(4), "*1@bridge+300ms"),
            run_bridged(say_to("both"), secs(4), "*1@bridge+300ms"),
        );
        for (sim, legs) in [(to_self, "aleg"), (to_peer, "bleg"), (to_both, "both")] {
            let me = me(&sim);
            assert_eq!(
                apis(&sim),
                [
                    format!("uuid_broadcast {me} 'say::fr number iterated FEMININE 123' {legs}"),
                    said_line(&me, "said"),
                ]
            );
        }
    }
}

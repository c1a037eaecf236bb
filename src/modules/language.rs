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

#[cfg(test)]
mod tests {
    use crate::engine::testkit::*;
    use serde_json::json;

    #[tokio::test]
    async fn sets_default_language_lowercased_and_continues() {
        let flow = node(
            "language",
            json!({"language": "fr-CA"}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(
            apps(&sim),
            ["set default_language=fr-ca", "set marker=after"]
        );
        assert_eq!(branches(&sim)[0], "_");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn later_modules_read_the_language() {
        // branch_variable reads channel variables as FreeSWITCH reported them.
        let flow = node(
            "language",
            json!({"language": "de"}),
            json!({"_": node("branch_variable", json!({"variable": "default_language"}),
                json!({"de": marker("german", json!({})), "_": marker("other", json!({}))}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(markers(&sim), ["german"]);
    }

    #[tokio::test]
    async fn caller_hangup_ends_the_flow() {
        let flow = node(
            "language",
            json!({"language": "fr"}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, caller_gone_before_first_app()).await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert!(markers(&sim).is_empty());
    }
}

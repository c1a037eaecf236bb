//! `transfer`: blind-transfers the call to an extension of a FreeSWITCH dialplan context, handing
//! it back to the switch's own routing (e.g. to reach a legacy IVR or a queue).
//!
//! ESL: `execute transfer <target> <dialplan> <context>`. The call leaves callflowd's control:
//! the executor ends without hanging up and the socket is closed. Target: `target`, else the
//! route's capture group. No target -> `_`.

use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `transfer` module.
pub struct Transfer;

/// `transfer` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Extension to transfer to.
    #[serde(default)]
    pub target: Option<String>,
    /// Dialplan context.
    #[serde(default = "default_context")]
    pub context: String,
    /// Dialplan type (`XML`, `inline`...).
    #[serde(default = "xml")]
    pub dialplan: String,
    /// Only blind transfers exist in a callflow (attended ones are metaflows).
    #[serde(default = "blind")]
    pub transfer_type: String,
}

fn default_context() -> String {
    "default".into()
}
fn xml() -> String {
    "XML".into()
}
fn blind() -> String {
    "blind".into()
}

impl CallflowModule for Transfer {
    const NAME: &'static str = "transfer";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Blind transfer to an extension in a FreeSWITCH dialplan context",
            "properties": {
                "target": {"type": "string", "pattern": "^[A-Za-z0-9_+*#.@\\-]{1,64}$", "description": "Extension (default: the capture group)"},
                "context": {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,64}$", "default": "default"},
                "dialplan": {"type": "string", "enum": ["XML", "inline", "enum", "LUA"], "default": "XML"},
                "transfer_type": {"type": "string", "enum": ["blind"], "default": "blind"}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let target = data.target.clone().or_else(|| {
            call.kvs
                .get("capture_group")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            tracing::warn!("transfer has no target; continuing");
            return Ok(Next::default_child());
        };
        let arg = format!("{target} {} {}", data.dialplan, data.context);
        call.execute("transfer", &arg).await?;
        Ok(Next::Transfer)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::executor::FlowEnd;
    use crate::engine::session::SessionEnd;
    use crate::engine::testkit::*;
    use crate::fakeswitch::{CallScript, HangupBy};
    use serde_json::json;

    fn transfer(data: serde_json::Value) -> serde_json::Value {
        node("transfer", data, json!({"_": marker("after", json!({}))}))
    }

    #[tokio::test]
    async fn hands_the_call_to_the_dialplan_without_hanging_up() {
        let sim = run(transfer(json!({"target": "2000"})), script()).await;
        assert_eq!(apps(&sim), ["transfer 2000 XML default"]);
        assert_eq!(branches(&sim), ["released"]);
        assert_eq!(sim.report.end, SessionEnd::Flow(FlowEnd::Released));
        assert_eq!(
            sim.transcript.transferred_to.as_deref(),
            Some("2000 XML default")
        );
        assert!(
            !matches!(
                sim.transcript.hangup.as_ref().map(|h| &h.by),
                Some(HangupBy::Controller)
            ),
            "callflowd must not hang up a transferred call"
        );
        assert!(markers(&sim).is_empty());
    }

    #[tokio::test]
    async fn capture_group_target_and_custom_context() {
        let store = store_with_flow(serde_json::json!({}));
        store.put(
            ACCOUNT,
            "callflows",
            "00000000000000000000000000000a07",
            json!({"patterns": ["^\\*7(\\d+)$"], "flow": validated(transfer(
                json!({"context": "legacy", "dialplan": "inline"}),
            ))}),
        );
        let sim = run_with_store(store, CallScript::new("*74321").account(Some(ACCOUNT))).await;
        assert_eq!(apps(&sim), ["transfer 4321 inline legacy"]);
        assert_eq!(sim.report.end, SessionEnd::Flow(FlowEnd::Released));
    }

    #[tokio::test]
    async fn no_target_takes_the_default_child() {
        let sim = run(transfer(json!({})), script()).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(branches(&sim)[0], "_");
        assert!(completed(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn caller_hangup_before_the_transfer_ends_the_flow() {
        let sim = run(
            transfer(json!({"target": "2000"})),
            caller_gone_before_first_app(),
        )
        .await;
        assert!(ended_by_hangup(&sim), "{:?}", sim.report.end);
        assert_eq!(sim.transcript.transferred_to, None);
    }
}

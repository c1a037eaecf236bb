//! `group`: rings the members of a `groups` document (its `endpoints` map of devices and users).
//!
//! ESL: see [`super::bridge`] — one `execute bridge <legs>`. Children: answered -> stop;
//! failure -> cause child, then `sip:<code>`, then `_`; empty or unknown group -> `_`.

use super::bridge::{self, BridgeResult, EndpointOptions, Strategy};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `group` module.
pub struct Group;

/// `group` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Group document id.
    pub id: String,
    /// Ring time in seconds.
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// `simultaneous` or `single`.
    #[serde(default = "simultaneous")]
    pub strategy: String,
    /// Media (or tone) played while ringing.
    #[serde(default)]
    pub ringback: Option<String>,
}

fn twenty() -> u32 {
    20
}
fn simultaneous() -> String {
    "simultaneous".into()
}

impl CallflowModule for Group {
    const NAME: &'static str = "group";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Ring the members of a group",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                "strategy": {"type": "string", "enum": ["simultaneous", "single"], "default": "simultaneous"},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let options = EndpointOptions {
            can_call_self: false,
            ignore_forward: true,
            delay: 0,
            timeout: Some(data.timeout).filter(|t| *t > 0),
        };
        let legs = bridge::group_legs(call, &data.id, &options);
        if legs.is_empty() {
            return Ok(Next::default_child());
        }
        let strategy = Strategy::parse(&data.strategy);
        let timeout = Some(data.timeout).filter(|t| *t > 0);
        match bridge::bridge(call, &legs, strategy, timeout, data.ringback.as_deref()).await? {
            BridgeResult::Answered => Ok(Next::Stop),
            BridgeResult::Failed { cause, sip_code } => {
                Ok(bridge::failure_next(&cause, sip_code.as_deref()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testkit::{apps, branches, node, run_with_store, script, store_for};
    use crate::fakeswitch::BridgeOutcome;
    use crate::modules::bridge::tests::{
        DEV_A, DEV_B, DEV_C, GROUP_A, PREPARE, REALM, USER_A, assert_hung_up_by_engine, bridges,
        device, owned_device, play, put,
    };
    use crate::store::memory::MemStore;
    use serde_json::{Value, json};
    use std::sync::Arc;

    /// GROUP_A = device 2001 (forwarded) + USER_A (2002, 2003).
    fn store(data: Value, children: Value) -> Arc<MemStore> {
        let store = store_for(node("group", data, children));
        let mut forwarded = device("2001");
        forwarded["call_forward"] = json!({"enabled": true, "number": "5551234"});
        put(&store, "devices", DEV_A, forwarded);
        put(&store, "users", USER_A, json!({"first_name": "Ann"}));
        put(&store, "devices", DEV_B, owned_device("2002", USER_A));
        put(&store, "devices", DEV_C, owned_device("2003", USER_A));
        put(
            &store,
            "groups",
            GROUP_A,
            json!({"name": "Sales", "endpoints": {DEV_A: {"type": "device"}, USER_A: {"type": "user"}}}),
        );
        store
    }

    #[tokio::test]
    async fn rings_every_member_at_once_ignoring_call_forward() {
        let sim = run_with_store(
            store(json!({"id": GROUP_A}), json!({"_": play("x.wav")})),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                PREPARE.to_string(),
                format!(
                    "bridge {{originate_timeout=20,ignore_early_media=true}}[leg_timeout=20]user/2001@{REALM},[leg_timeout=20]user/2002@{REALM},[leg_timeout=20]user/2003@{REALM}"
                )
            ]
        );
        assert_eq!(branches(&sim), ["stop"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn single_strategy_and_the_callers_own_device() {
        let sim = run_with_store(
            store(
                json!({"id": GROUP_A, "strategy": "single", "timeout": 10}),
                json!({}),
            ),
            script().var("sip_auth_username", "2002"),
        )
        .await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=10}}[leg_timeout=10]user/2001@{REALM}|[leg_timeout=10]user/2003@{REALM}"
            )]
        );
    }

    #[tokio::test]
    async fn failure_takes_the_cause_child_then_default() {
        let sim = run_with_store(
            store(
                json!({"id": GROUP_A}),
                json!({"NO_ANSWER": play("noanswer.wav"), "_": play("default.wav")}),
            ),
            script().bridge("*", BridgeOutcome::failed("NO_ANSWER")),
        )
        .await;
        assert_eq!(branches(&sim)[0], "NO_ANSWER");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback noanswer.wav")
        );

        let sim = run_with_store(
            store(
                json!({"id": GROUP_A}),
                json!({"NO_ANSWER": play("noanswer.wav"), "_": play("default.wav")}),
            ),
            script().bridge("*", BridgeOutcome::failed("USER_BUSY")),
        )
        .await;
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn unknown_or_empty_group_continues() {
        let s = store(json!({"id": GROUP_A}), json!({"_": play("default.wav")}));
        put(
            &s,
            "groups",
            GROUP_A,
            json!({"name": "Empty", "endpoints": {}}),
        );
        let sim = run_with_store(s, script()).await;
        assert!(bridges(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");

        let s = store(json!({"id": GROUP_A}), json!({"_": play("default.wav")}));
        s.remove(crate::engine::testkit::ACCOUNT, "groups", GROUP_A);
        let sim = run_with_store(s, script()).await;
        assert!(bridges(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
    }
}

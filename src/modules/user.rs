//! `user`: rings every enabled device a user owns (their desk phone and softphone together, or
//! one after the other with `strategy: single`).
//!
//! ESL: see [`super::bridge`] — `execute bridge <legs>` with `,` (simultaneous) or `|` (single).
//! Children: answered -> stop; failure -> cause child, then `sip:<code>`, then `_`; no devices
//! (or only the caller's own) -> `_`.

use super::bridge::{self, BridgeResult, EndpointOptions, Strategy};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `user` module.
pub struct User;

/// `user` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// User document id.
    pub id: String,
    /// Ring time in seconds.
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// Seconds before ringing.
    #[serde(default)]
    pub delay: u32,
    /// `simultaneous` or `single`.
    #[serde(default = "simultaneous")]
    pub strategy: String,
    /// Ring even the caller's own device.
    #[serde(default)]
    pub can_call_self: bool,
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

impl CallflowModule for User {
    const NAME: &'static str = "user";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Ring a user's devices",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                "delay": {"type": "integer", "minimum": 0, "maximum": 300, "default": 0},
                "strategy": {"type": "string", "enum": ["simultaneous", "single"], "default": "simultaneous"},
                "can_call_self": {"type": "boolean", "default": false},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let options = EndpointOptions {
            can_call_self: data.can_call_self,
            ignore_forward: false,
            delay: data.delay,
            timeout: Some(data.timeout).filter(|t| *t > 0),
        };
        let legs = bridge::user_legs(call, &data.id, &options);
        if legs.is_empty() {
            tracing::info!(user = %data.id, "user has no device to ring; continuing");
            return Ok(Next::default_child());
        }
        let strategy = Strategy::parse(&data.strategy);
        let timeout = Some(data.timeout + data.delay).filter(|_| data.timeout > 0);
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
        DEV_A, DEV_B, DEV_C, PREPARE, REALM, USER_A, USER_B, assert_caller_hung_up,
        assert_hung_up_by_engine, bridges, owned_device, play, put,
    };
    use crate::store::memory::MemStore;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;

    /// USER_A owns 2001 and 2002; USER_B owns 2003.
    fn store(data: Value, children: Value) -> Arc<MemStore> {
        let store = store_for(node("user", data, children));
        put(
            &store,
            "users",
            USER_A,
            json!({"first_name": "Ann", "last_name": "A"}),
        );
        put(
            &store,
            "users",
            USER_B,
            json!({"first_name": "Bob", "last_name": "B"}),
        );
        put(&store, "devices", DEV_A, owned_device("2001", USER_A));
        put(&store, "devices", DEV_B, owned_device("2002", USER_A));
        put(&store, "devices", DEV_C, owned_device("2003", USER_B));
        store
    }

    #[tokio::test]
    async fn rings_both_devices_at_once_and_stops_when_answered() {
        let sim = run_with_store(
            store(json!({"id": USER_A}), json!({"_": play("x.wav")})),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                PREPARE.to_string(),
                format!(
                    "bridge {{originate_timeout=20,ignore_early_media=true}}[leg_timeout=20]user/2001@{REALM},[leg_timeout=20]user/2002@{REALM}"
                )
            ]
        );
        assert_eq!(branches(&sim), ["stop"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn single_strategy_rings_one_after_the_other() {
        let sim = run_with_store(
            store(
                json!({"id": USER_A, "strategy": "single", "timeout": 15}),
                json!({}),
            ),
            script(),
        )
        .await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=15}}[leg_timeout=15]user/2001@{REALM}|[leg_timeout=15]user/2002@{REALM}"
            )]
        );
    }

    #[tokio::test]
    async fn the_callers_own_device_is_left_out() {
        let sim = run_with_store(
            store(json!({"id": USER_A}), json!({})),
            script().var("sip_auth_username", "2002"),
        )
        .await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=20}}[leg_timeout=20]user/2001@{REALM}"
            )]
        );
    }

    #[tokio::test]
    async fn failures_take_the_cause_child() {
        let children = || json!({"USER_BUSY": play("busy.wav"), "NO_ANSWER": play("noanswer.wav"), "_": play("default.wav")});
        for (cause, file) in [
            ("USER_BUSY", "busy.wav"),
            ("NO_ANSWER", "noanswer.wav"),
            ("CALL_REJECTED", "default.wav"),
        ] {
            let sim = run_with_store(
                store(json!({"id": USER_A}), children()),
                script().bridge("*", BridgeOutcome::failed(cause)),
            )
            .await;
            assert_eq!(
                apps(&sim).last().cloned(),
                Some(format!("playback {file}")),
                "{cause}"
            );
        }
    }

    #[tokio::test]
    async fn caller_hanging_up_while_it_rings_ends_the_flow() {
        let sim = run_with_store(
            store(json!({"id": USER_A}), json!({"_": play("default.wav")})),
            script()
                .bridge(
                    "*",
                    BridgeOutcome::answered(Duration::from_secs(1)).after(Duration::from_secs(20)),
                )
                .hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert_caller_hung_up(&sim);
        assert!(branches(&sim).is_empty());
    }

    #[tokio::test]
    async fn disabled_user_or_user_without_devices_continues() {
        let s = store(json!({"id": USER_A}), json!({"_": play("default.wav")}));
        put(
            &s,
            "users",
            USER_A,
            json!({"first_name": "Ann", "enabled": false}),
        );
        let sim = run_with_store(s, script()).await;
        assert!(bridges(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");

        let s = store(json!({"id": USER_A}), json!({"_": play("default.wav")}));
        s.remove(crate::engine::testkit::ACCOUNT, "devices", DEV_A);
        s.remove(crate::engine::testkit::ACCOUNT, "devices", DEV_B);
        let sim = run_with_store(s, script()).await;
        assert!(bridges(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
    }
}

//! `device`: rings one device (a SIP phone registered through callflowd's directory).
//!
//! ESL: see [`super::bridge`]: `execute multiset ^^|continue_on_fail=true|hangup_after_bridge=false`
//! (once per call), optional `execute set ringback=...`, then `execute bridge user/<sip.username>@<realm>`
//! (or the device's call-forward number through `loopback/<number>/default`).
//! Children: answered -> stop; failure -> the cause child (`USER_BUSY`, `NO_ANSWER`, ...), then
//! `sip:<code>`, then `_`; a disabled, unknown or own device -> `_`.

use super::bridge::{self, BridgeResult, EndpointOptions, Strategy};
use super::{CallflowModule, Next};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `device` module.
pub struct Device;

/// `device` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Device document id.
    pub id: String,
    /// Ring time in seconds (0: FreeSWITCH's default).
    #[serde(default = "twenty")]
    pub timeout: u32,
    /// Seconds before ringing.
    #[serde(default)]
    pub delay: u32,
    /// Ring even when the caller is this device.
    #[serde(default)]
    pub can_call_self: bool,
    /// Media (or tone) played to the caller while ringing.
    #[serde(default)]
    pub ringback: Option<String>,
}

fn twenty() -> u32 {
    20
}

impl CallflowModule for Device {
    const NAME: &'static str = "device";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Ring a device",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 20},
                "delay": {"type": "integer", "minimum": 0, "maximum": 300, "default": 0},
                "can_call_self": {"type": "boolean", "default": false},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048}
            }
        })
    }

    async fn run(data: Data, _node: &Node, call: &mut Call) -> Result<Next, CallEnded> {
        let device = match call
            .ctx
            .store
            .document(&call.account_id, "devices", &data.id)
        {
            Ok(Some(device)) => device,
            Ok(None) => {
                tracing::warn!(device = %data.id, "device not found; continuing");
                return Ok(Next::default_child());
            }
            Err(error) => {
                tracing::error!(%error, "device lookup failed; continuing");
                return Ok(Next::default_child());
            }
        };
        let options = EndpointOptions {
            can_call_self: data.can_call_self,
            ignore_forward: false,
            delay: data.delay,
            timeout: Some(data.timeout).filter(|t| *t > 0),
        };
        let legs = bridge::device_legs(call, &device, &options);
        if legs.is_empty() {
            return Ok(Next::default_child());
        }
        let timeout = Some(data.timeout + data.delay).filter(|_| data.timeout > 0);
        match bridge::bridge(
            call,
            &legs,
            Strategy::Simultaneous,
            timeout,
            data.ringback.as_deref(),
        )
        .await?
        {
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
        DEV_A, PREPARE, REALM, assert_caller_hung_up, assert_hung_up_by_engine, bridges, device,
        play, put, with_sip_code,
    };
    use serde_json::{Value, json};
    use std::time::Duration;

    fn store(
        data: Value,
        children: Value,
        doc: Value,
    ) -> std::sync::Arc<crate::store::memory::MemStore> {
        let store = store_for(node("device", data, children));
        put(&store, "devices", DEV_A, doc);
        store
    }

    #[tokio::test]
    async fn answered_bridge_stops_the_flow() {
        let store = store(
            json!({"id": DEV_A}),
            json!({"_": play("after.wav")}),
            device("2001"),
        );
        let sim = run_with_store(store, script()).await;
        assert_eq!(
            apps(&sim),
            [
                PREPARE.to_string(),
                format!("bridge {{originate_timeout=20}}[leg_timeout=20]user/2001@{REALM}")
            ]
        );
        assert_eq!(branches(&sim), ["stop"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
        assert!(
            sim.transcript
                .events()
                .iter()
                .any(|e| e == "CHANNEL_BRIDGE")
        );
    }

    #[tokio::test]
    async fn delay_and_timeout_become_leg_and_originate_timeouts() {
        let store = store(
            json!({"id": DEV_A, "timeout": 30, "delay": 5}),
            json!({}),
            device("2001"),
        );
        let sim = run_with_store(store, script()).await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=35}}[leg_timeout=30,leg_delay_start=5]user/2001@{REALM}"
            )]
        );
    }

    #[tokio::test]
    async fn busy_takes_the_cause_child() {
        let store = store(
            json!({"id": DEV_A}),
            json!({"USER_BUSY": play("busy.wav"), "NO_ANSWER": play("noanswer.wav"), "_": play("other.wav")}),
            device("2001"),
        );
        let sim = run_with_store(
            store,
            script().bridge("*", BridgeOutcome::failed("USER_BUSY")),
        )
        .await;
        assert_eq!(branches(&sim)[0], "USER_BUSY");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback busy.wav")
        );
        // The failed bridge did not hang the caller up (continue_on_fail); the flow did, at its end.
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn no_answer_takes_its_child() {
        let store = store(
            json!({"id": DEV_A}),
            json!({"USER_BUSY": play("busy.wav"), "NO_ANSWER": play("noanswer.wav")}),
            device("2001"),
        );
        let sim = run_with_store(
            store,
            script().bridge(
                "*",
                BridgeOutcome::failed("NO_ANSWER").after(Duration::from_millis(200)),
            ),
        )
        .await;
        assert_eq!(branches(&sim)[0], "NO_ANSWER");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback noanswer.wav")
        );
    }

    #[tokio::test]
    async fn sip_code_child_when_no_cause_child_else_default() {
        let store1 = store(
            json!({"id": DEV_A}),
            json!({"sip:486": play("486.wav"), "_": play("default.wav")}),
            device("2001"),
        );
        let busy =
            || with_sip_code(script(), "sip:486").bridge("*", BridgeOutcome::failed("USER_BUSY"));
        let sim = run_with_store(store1, busy()).await;
        assert_eq!(branches(&sim)[0], "sip:486");
        let store2 = store(
            json!({"id": DEV_A}),
            json!({"NO_ANSWER": play("noanswer.wav"), "_": play("default.wav")}),
            device("2001"),
        );
        let sim = run_with_store(store2, busy()).await;
        assert_eq!(branches(&sim)[0], "_");
        assert_eq!(
            apps(&sim).last().map(String::as_str),
            Some("playback default.wav")
        );
    }

    #[tokio::test]
    async fn failure_without_children_ends_the_call() {
        let store = store(json!({"id": DEV_A}), json!({}), device("2001"));
        let sim = run_with_store(
            store,
            script().bridge("*", BridgeOutcome::failed("CALL_REJECTED")),
        )
        .await;
        assert_eq!(branches(&sim), ["CALL_REJECTED (no child: stop)"]);
        assert_hung_up_by_engine(&sim, "NORMAL_CLEARING");
    }

    #[tokio::test]
    async fn caller_hanging_up_while_it_rings_ends_the_flow() {
        let store = store(
            json!({"id": DEV_A}),
            json!({"NO_ANSWER": play("noanswer.wav"), "_": play("default.wav")}),
            device("2001"),
        );
        let sim = run_with_store(
            store,
            script()
                .bridge(
                    "*",
                    BridgeOutcome::failed("NO_ANSWER").after(Duration::from_secs(20)),
                )
                .hangup_after(Duration::from_millis(300)),
        )
        .await;
        assert_caller_hung_up(&sim);
        assert_eq!(
            apps(&sim).last().map(|a| a.starts_with("bridge ")),
            Some(true)
        );
        assert!(branches(&sim).is_empty(), "{:?}", branches(&sim));
    }

    #[tokio::test]
    async fn disabled_or_missing_device_continues_without_ringing() {
        let mut disabled = device("2001");
        disabled["enabled"] = json!(false);
        let sim = run_with_store(
            store(
                json!({"id": DEV_A}),
                json!({"_": play("default.wav")}),
                disabled,
            ),
            script(),
        )
        .await;
        assert_eq!(
            apps(&sim),
            [
                "answer",
                "set playback_terminators=123456789*0#",
                "playback default.wav"
            ]
        );
        assert_eq!(branches(&sim)[0], "_");

        let missing = store_for(node(
            "device",
            json!({"id": DEV_A}),
            json!({"_": play("default.wav")}),
        ));
        let sim = run_with_store(missing, script()).await;
        assert!(bridges(&sim).is_empty());
        assert_eq!(branches(&sim)[0], "_");
    }

    #[tokio::test]
    async fn the_callers_own_device_is_not_rung_unless_can_call_self() {
        // The session identifies the caller's device by `sip_auth_username`.
        let own = || script().var("sip_auth_username", "2001");
        let sim = run_with_store(
            store(
                json!({"id": DEV_A}),
                json!({"_": play("default.wav")}),
                device("2001"),
            ),
            own(),
        )
        .await;
        assert!(bridges(&sim).is_empty(), "{:?}", apps(&sim));
        assert_eq!(branches(&sim)[0], "_");

        let sim = run_with_store(
            store(
                json!({"id": DEV_A, "can_call_self": true}),
                json!({}),
                device("2001"),
            ),
            own(),
        )
        .await;
        assert_eq!(bridges(&sim).len(), 1);
    }

    #[tokio::test]
    async fn call_forward_rings_the_forward_number_through_loopback() {
        let mut forwarded = device("2001");
        forwarded["call_forward"] = json!({"enabled": true, "number": "5551234"});
        let sim = run_with_store(
            store(json!({"id": DEV_A}), json!({}), forwarded.clone()),
            script(),
        )
        .await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=20}}[account_id={},leg_timeout=20]loopback/5551234/default",
                crate::engine::testkit::ACCOUNT
            )]
        );

        // Not substituting: the phone rings too, both at once.
        forwarded["call_forward"]["substitute"] = json!(false);
        let sim = run_with_store(store(json!({"id": DEV_A}), json!({}), forwarded), script()).await;
        assert_eq!(
            bridges(&sim),
            [format!(
                "{{originate_timeout=20,ignore_early_media=true}}[account_id={},leg_timeout=20]loopback/5551234/default,[leg_timeout=20]user/2001@{REALM}",
                crate::engine::testkit::ACCOUNT
            )]
        );
    }
}

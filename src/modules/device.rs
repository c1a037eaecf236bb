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

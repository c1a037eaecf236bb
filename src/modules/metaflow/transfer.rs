//! Metaflow `transfer`: sends the far end to another number — blind (the caller leaves at once)
//! or attended (the caller talks to the target first, the far end on hold, and completes the
//! transfer by hanging up, or takes the call back).
//!
//! Target: `target`, else the code's first capture (`*2` + `1001` with pattern `^2(\d+)$`).
//! The target is dialled through the FreeSWITCH dialplan context `context` (default `default`),
//! so callflowd routes it like any call of the account (`account_id` travels with the leg).
//! - blind, bridged: `uuid_setvar <peer> account_id <id>`, `uuid_transfer <peer> <target> XML <context>`;
//!   the caller's bridge ends and the main flow goes on; not bridged: `uuid_transfer <uuid> ...`
//!   and the call leaves callflowd (the executor ends without hanging up);
//! - attended (needs a peer): `uuid_setvar <peer> hold_music <moh>` when `moh` is set,
//!   `uuid_setvar <uuid> attxfer_cancel_key <last digit of takeback_dtmf>`, then
//!   `uuid_broadcast <uuid> 'att_xfer::{originate_timeout=<timeout>,account_id=<id>}loopback/<target>/<context>' aleg`
//!   (FreeSWITCH's `att_xfer`: the cancel key takes the call back; hanging up completes it).
//!   FreeSWITCH's att_xfer keys are single digits, so only the last digit of `takeback_dtmf`
//!   (Kazoo `*1`) is used.
//!
//! Children: `_`; no target -> `no_target`.

use super::{MetaNext, MetaflowModule, first_capture};
use crate::engine::call::{Call, CallEnded};
use crate::modules::media::{self, Media};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `transfer` metaflow module.
pub struct Transfer;

/// `transfer` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Number to transfer to.
    #[serde(default)]
    pub target: Option<String>,
    /// `blind` or `attended`.
    #[serde(default = "attended")]
    pub transfer_type: String,
    /// Digits that take an attended transfer back.
    #[serde(default = "takeback")]
    pub takeback_dtmf: String,
    /// Music for the held party during an attended transfer.
    #[serde(default)]
    pub moh: Option<String>,
    /// Ringback the caller hears while the target rings.
    #[serde(default)]
    pub ringback: Option<String>,
    /// Seconds the target rings.
    #[serde(default = "twenty")]
    pub target_timeout: u32,
    /// Dialplan context the target is dialled in.
    #[serde(default = "default_context")]
    pub context: String,
    /// Captures of the triggering pattern.
    #[serde(default)]
    pub captures: Vec<String>,
    /// The code.
    #[serde(default)]
    pub collected: Option<String>,
}

fn attended() -> String {
    "attended".into()
}
fn takeback() -> String {
    "*1".into()
}
fn twenty() -> u32 {
    20
}
fn default_context() -> String {
    "default".into()
}

fn safe(value: &str) -> String {
    value.replace(
        |c: char| !(c.is_ascii_alphanumeric() || "+*#_-.".contains(c)),
        "",
    )
}

impl MetaflowModule for Transfer {
    const NAME: &'static str = "transfer";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Transfer the far end (blind or attended)",
            "properties": {
                "target": {"type": "string", "pattern": "^[A-Za-z0-9+*#_.\\-]{1,64}$"},
                "transfer_type": {"type": "string", "enum": ["blind", "attended"], "default": "attended"},
                "takeback_dtmf": {"type": "string", "pattern": "^[0-9*#]{1,4}$", "default": "*1"},
                "moh": {"type": "string", "minLength": 1, "maxLength": 2048},
                "ringback": {"type": "string", "minLength": 1, "maxLength": 2048},
                "target_timeout": {"type": "integer", "minimum": 5, "maximum": 300, "default": 20},
                "context": {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,64}$", "default": "default"}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let Some(target) = data
            .target
            .clone()
            .or_else(|| first_capture(&data.captures, &data.collected))
            .map(|t| safe(&t))
            .filter(|t| !t.is_empty())
        else {
            return Ok(MetaNext::Continue("no_target".into()));
        };
        let context = safe(&data.context);
        let account = call.account_id.clone();
        let uuid = call.uuid.clone();
        let peer = call.peer_uuid().map(str::to_string);
        match (data.transfer_type.as_str(), peer) {
            ("attended", Some(peer)) => {
                if let Some(moh) = &data.moh {
                    if let Media::Playback(path) = media::resolve_for(call, moh) {
                        call.api(&format!("uuid_setvar {peer} hold_music {path}"))
                            .await?;
                    }
                }
                if let Some(ringback) = &data.ringback {
                    if let Media::Playback(path) = media::resolve_for(call, ringback) {
                        call.api(&format!("uuid_setvar {uuid} ringback {path}"))
                            .await?;
                    }
                }
                if let Some(key) = data.takeback_dtmf.chars().last() {
                    call.api(&format!("uuid_setvar {uuid} attxfer_cancel_key {key}"))
                        .await?;
                }
                let dial = format!(
                    "{{originate_timeout={},account_id={account}}}loopback/{target}/{context}",
                    data.target_timeout
                );
                call.api(&format!("uuid_broadcast {uuid} 'att_xfer::{dial}' aleg"))
                    .await?;
            }
            (_, Some(peer)) => {
                call.api(&format!("uuid_setvar {peer} account_id {account}"))
                    .await?;
                call.api(&format!("uuid_transfer {peer} {target} XML {context}"))
                    .await?;
            }
            (_, None) => {
                call.api(&format!("uuid_transfer {uuid} {target} XML {context}"))
                    .await?;
                call.mark_transferred();
            }
        }
        Ok(MetaNext::default_child())
    }
}

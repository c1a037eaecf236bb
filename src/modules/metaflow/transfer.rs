//! Metaflow `transfer`: the party who pressed the code (the transferor) sends the other one
//! (the transferee, Kazoo's `dtmf_leg` rule) to another number — blind (at once) or attended
//! (the transferor talks to the target first, the transferee on hold, and completes the
//! transfer by hanging up, or takes the call back).
//!
//! Target: `target`, else the code's first capture (`*2` + `1001` with pattern `^2(\d+)$`).
//! The target is dialled through the FreeSWITCH dialplan context `context` (default `default`),
//! so callflowd routes it like any call of the account (`account_id` travels with the leg).
//! - blind, the caller pressed while bridged: `uuid_setvar <peer> account_id <id>`,
//!   `uuid_transfer <peer> <target> XML <context>`; the caller's bridge ends and the main flow
//!   goes on;
//! - blind, the far end pressed (`listen_on` peer/both), or the caller pressed while not
//!   bridged: `uuid_transfer <uuid> <target> XML <context>`; this call leaves callflowd (the
//!   executor ends without hanging up, the metaflow's children do not run);
//! - attended (needs both parties): `uuid_setvar <transferee> hold_music <moh>` when `moh` is
//!   set, `uuid_setvar <transferor> ringback <ringback>` when set,
//!   `uuid_setvar <transferor> attxfer_cancel_key <last digit of takeback_dtmf>`, then
//!   `uuid_broadcast <transferor> 'att_xfer::{originate_timeout=<timeout>,account_id=<id>}loopback/<target>/<context>' aleg`
//!   (FreeSWITCH's `att_xfer` on the transferor's channel: the cancel key takes the call back;
//!   hanging up completes it). FreeSWITCH's att_xfer keys are single digits, so only the last
//!   digit of `takeback_dtmf` (Kazoo `*1`) is used. Without both parties it is blind.
//!
//! Children: `_` (not followed once this leg itself was transferred); no target ->
//! `no_target`.

use super::{MetaNext, MetaflowModule, Parties, first_capture, parties};
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
    /// The leg that pressed the code (`self` or `peer`).
    #[serde(default)]
    pub dtmf_leg: Option<String>,
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
        let Parties { presser, other } = parties(call, data.dtmf_leg.as_deref());
        match (data.transfer_type.as_str(), presser, other) {
            ("attended", Some(transferor), Some(transferee)) => {
                if let Some(moh) = &data.moh {
                    if let Media::Playback(path) = media::resolve_for(call, moh) {
                        call.api(&format!("uuid_setvar {transferee} hold_music {path}"))
                            .await?;
                    }
                }
                if let Some(ringback) = &data.ringback {
                    if let Media::Playback(path) = media::resolve_for(call, ringback) {
                        call.api(&format!("uuid_setvar {transferor} ringback {path}"))
                            .await?;
                    }
                }
                if let Some(key) = data.takeback_dtmf.chars().last() {
                    call.api(&format!(
                        "uuid_setvar {transferor} attxfer_cancel_key {key}"
                    ))
                    .await?;
                }
                let dial = format!(
                    "{{originate_timeout={},account_id={account}}}loopback/{target}/{context}",
                    data.target_timeout
                );
                call.api(&format!(
                    "uuid_broadcast {transferor} 'att_xfer::{dial}' aleg"
                ))
                .await?;
            }
            (_, _, Some(far_end)) if far_end != uuid => {
                call.api(&format!("uuid_setvar {far_end} account_id {account}"))
                    .await?;
                call.api(&format!("uuid_transfer {far_end} {target} XML {context}"))
                    .await?;
            }
            // This channel is the transferee (the far end pressed), or nobody else is there.
            _ => {
                call.api(&format!("uuid_transfer {uuid} {target} XML {context}"))
                    .await?;
                call.mark_transferred();
            }
        }
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        apis, codes, me, meta, one_code, peer, run_bridged, run_pressed_by_peer, run_unbridged,
        said, said_line, secs,
    };
    use crate::engine::executor::FlowEnd;
    use crate::engine::session::SessionEnd;
    use crate::engine::testkit::{ACCOUNT, markers};
    use serde_json::json;

    #[tokio::test]
    async fn star2_and_a_number_blind_transfers_the_peer_while_bridged() {
        let metaflow = json!({"digit_timeout": 1200, "patterns": {"^2(\\d+)$": meta(
            "transfer",
            json!({"transfer_type": "blind"}),
            json!({"_": said("done")}),
        )}});
        let sim = run_bridged(metaflow, secs(4), "*2101@bridge+300ms").await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_setvar {peer} account_id {ACCOUNT}"),
                format!("uuid_transfer {peer} 101 XML default"),
                said_line(&me, "done"),
            ]
        );
        assert_eq!(codes(&sim), ["*2101 on self: transfer"]);
    }

    #[tokio::test]
    async fn attended_transfer_broadcasts_att_xfer_with_the_cancel_key() {
        let metaflow = one_code(
            "3",
            meta(
                "transfer",
                json!({"target": "2001", "transfer_type": "attended", "takeback_dtmf": "*1",
                       "moh": "/moh/hold.wav", "ringback": "%(2000,4000,440,480)",
                       "target_timeout": 30}),
                json!({"_": said("dialling")}),
            ),
        );
        let sim = run_bridged(metaflow, secs(4), "*3@bridge+300ms").await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_setvar {peer} hold_music /moh/hold.wav"),
                format!("uuid_setvar {me} ringback %(2000,4000,440,480)"),
                format!("uuid_setvar {me} attxfer_cancel_key 1"),
                format!(
                    "uuid_broadcast {me} 'att_xfer::{{originate_timeout=30,account_id={ACCOUNT}}}loopback/2001/default' aleg"
                ),
                said_line(&me, "dialling"),
            ]
        );
    }

    #[tokio::test]
    async fn attended_transfer_defaults() {
        // Kazoo's default transfer type is attended; takeback `*1` -> cancel key 1; 20 s.
        let metaflow = one_code("3", meta("transfer", json!({"target": "2001"}), json!({})));
        let sim = run_bridged(metaflow, secs(4), "*3@bridge+300ms").await;
        let me = me(&sim);
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_setvar {me} attxfer_cancel_key 1"),
                format!(
                    "uuid_broadcast {me} 'att_xfer::{{originate_timeout=20,account_id={ACCOUNT}}}loopback/2001/default' aleg"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn no_target_takes_the_no_target_child() {
        // An exact code has no captures: nothing to dial.
        let metaflow = one_code(
            "2",
            meta(
                "transfer",
                json!({"transfer_type": "blind"}),
                json!({"no_target": said("none"), "_": said("default")}),
            ),
        );
        let sim = run_bridged(metaflow, secs(4), "*2@bridge+300ms").await;
        assert_eq!(apis(&sim), [said_line(&me(&sim), "none")]);
    }

    #[tokio::test]
    async fn without_a_peer_the_call_itself_leaves_and_the_flow_ends_without_hangup() {
        // The child does not run: the channel is no longer ours.
        let metaflow = one_code(
            "2",
            meta(
                "transfer",
                json!({"target": "2001", "transfer_type": "blind"}),
                json!({"_": said("too late")}),
            ),
        );
        let sim = run_unbridged(metaflow, "*2@playback+300ms").await;
        assert_eq!(
            apis(&sim),
            [format!("uuid_transfer {} 2001 XML default", me(&sim))]
        );
        assert_eq!(sim.report.end, SessionEnd::Flow(FlowEnd::Released));
        assert_eq!(
            sim.transcript.transferred_to.as_deref(),
            Some("2001 XML default")
        );
        assert!(markers(&sim).is_empty());
        assert!(
            sim.transcript
                .commands
                .iter()
                .all(|c| c.call_command() != Some("hangup")),
            "a released call is not hung up"
        );
    }

    #[tokio::test]
    async fn pressed_by_the_far_end_the_far_end_is_the_transferor() {
        // The far end consults 2001 while the caller (the transferee) holds.
        let metaflow = one_code(
            "3",
            meta(
                "transfer",
                json!({"target": "2001", "moh": "/moh/hold.wav", "ringback": "/ring.wav"}),
                json!({}),
            ),
        );
        let sim = run_pressed_by_peer(metaflow, "*3", "").await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_setvar {me} hold_music /moh/hold.wav"),
                format!("uuid_setvar {peer} ringback /ring.wav"),
                format!("uuid_setvar {peer} attxfer_cancel_key 1"),
                format!(
                    "uuid_broadcast {peer} 'att_xfer::{{originate_timeout=20,account_id={ACCOUNT}}}loopback/2001/default' aleg"
                ),
            ]
        );
        assert_eq!(codes(&sim), ["*3 on peer: transfer"]);
    }
}

//! Metaflow `intercept`: picks up a call ringing at another device, user or number.
//!
//! The ringing leg is found in `api show channels` (CSV): the first outbound channel whose name
//! contains `/<sip username>@` (the target device, or the devices of the target user) or, for
//! `number` targets (default; the code's first capture when `target_id` is unset), whose name
//! contains `/<number>@` or whose destination is exactly the number; with `unbridged_only`
//! (default) it must still be ringing (RINGING, EARLY, RING_WAIT). Then `uuid_broadcast <uuid>
//! 'intercept::<ringing uuid>' aleg` makes this leg take that call (FreeSWITCH's `intercept`
//! bridges us to the caller and hangs up the ringing leg). A device/user target without SIP
//! usernames is `no_target` without asking the switch. The call is taken by this (the
//! caller's) leg, whoever pressed.
//! Children: `_`; no target or nothing ringing -> `no_target`.

use super::{MetaNext, MetaflowModule, first_capture};
use crate::engine::call::{Call, CallEnded};
use crate::store::field_at;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `intercept` metaflow module.
pub struct Intercept;

/// `intercept` data.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// `device`, `user` or `number`.
    #[serde(default = "number")]
    pub target_type: String,
    /// Device/user id, or the number.
    #[serde(default)]
    pub target_id: Option<String>,
    /// Only calls still ringing.
    #[serde(default = "yes")]
    pub unbridged_only: bool,
    /// Captures of the triggering pattern (number targets).
    #[serde(default)]
    pub captures: Vec<String>,
    /// The code.
    #[serde(default)]
    pub collected: Option<String>,
}

fn number() -> String {
    "number".into()
}
fn yes() -> bool {
    true
}

/// Finds the uuid of a ringing outbound channel in `show channels` CSV output matching one of
/// `needles`: a needle `/<user>@` matches a channel name containing it, any other needle (a
/// number) a destination equal to it — not a name merely containing those digits.
pub fn ringing_channel(csv: &str, needles: &[String], unbridged_only: bool) -> Option<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (uuid_i, dir_i, name_i, dest_i, state_i) = (
        column("uuid")?,
        column("direction")?,
        column("name")?,
        column("dest"),
        column("callstate"),
    );
    lines.find_map(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        let get = |i: usize| fields.get(i).copied().unwrap_or_default();
        let name = get(name_i);
        let dest = dest_i.map(get).unwrap_or_default();
        let state = state_i.map(get).unwrap_or("RINGING");
        let matches = needles.iter().any(|n| {
            if n.starts_with('/') {
                name.contains(n.as_str())
            } else {
                dest == n
            }
        });
        let ringing = matches!(state, "RINGING" | "EARLY" | "RING_WAIT");
        (get(dir_i) == "outbound" && matches && (ringing || !unbridged_only))
            .then(|| get(uuid_i).to_string())
    })
}

impl MetaflowModule for Intercept {
    const NAME: &'static str = "intercept";
    type Data = Data;

    fn schema() -> Value {
        json!({
            "type": "object",
            "description": "Pick up a call ringing elsewhere",
            "properties": {
                "target_type": {"type": "string", "enum": ["device", "user", "number"], "default": "number"},
                "target_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "unbridged_only": {"type": "boolean", "default": true},
                "auto_answer": {"type": "boolean", "default": false},
                "can_call_self": {"type": "boolean", "default": true}
            }
        })
    }

    async fn run(data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        let target = data
            .target_id
            .clone()
            .or_else(|| first_capture(&data.captures, &data.collected));
        let Some(target) = target else {
            return Ok(MetaNext::Continue("no_target".into()));
        };
        let store = call.ctx.store.clone();
        let account = call.account_id.clone();
        let usernames = |device: &Value| {
            field_at(device, "sip.username")
                .and_then(Value::as_str)
                .map(|u| format!("/{u}@"))
        };
        let needles: Vec<String> = match data.target_type.as_str() {
            "device" => store
                .document(&account, "devices", &target)
                .ok()
                .flatten()
                .and_then(|d| usernames(&d))
                .into_iter()
                .collect(),
            "user" => store
                .documents_where(&account, "devices", "owner_id", &target)
                .unwrap_or_default()
                .iter()
                .filter_map(usernames)
                .collect(),
            _ => vec![format!("/{target}@"), target.clone()],
        };
        if needles.is_empty() {
            return Ok(MetaNext::Continue("no_target".into()));
        }
        let csv = call.api("show channels").await?;
        let Some(ringing) = ringing_channel(&csv, &needles, data.unbridged_only) else {
            return Ok(MetaNext::Continue("no_target".into()));
        };
        let uuid = call.uuid.clone();
        call.api(&format!(
            "uuid_broadcast {uuid} 'intercept::{ringing}' aleg"
        ))
        .await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ringing_leg() {
        let csv = "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,callstate\n\
                   a1,inbound,x,1,sofia/internal/1000@10.0.0.1,CS_EXECUTE,,1000,,2001,ACTIVE\n\
                   b2,outbound,x,1,sofia/internal/2001@10.0.0.2:5060,CS_CONSUME_MEDIA,,1000,,2001,RINGING\n";
        assert_eq!(
            ringing_channel(csv, &["/2001@".into()], true).as_deref(),
            Some("b2")
        );
        assert_eq!(ringing_channel(csv, &["/3001@".into()], true), None);
        assert_eq!(ringing_channel("", &["x".into()], true), None);
    }

    #[test]
    fn ringing_states_direction_and_unbridged_only() {
        let csv = "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,callstate\n\
                   i1,inbound,x,1,sofia/internal/2001@10.0.0.9,CS_EXECUTE,,2001,,3000,RINGING\n\
                   a1,outbound,x,1,sofia/internal/2001@10.0.0.2,CS_EXCHANGE_MEDIA,,1000,,2001,ACTIVE\n\
                   e1,outbound,x,1,sofia/internal/2001@10.0.0.3,CS_CONSUME_MEDIA,,1000,,2001,EARLY\n";
        let needles = ["/2001@".to_string()];
        // An inbound leg never matches; an answered one only without unbridged_only.
        assert_eq!(ringing_channel(csv, &needles, true).as_deref(), Some("e1"));
        assert_eq!(ringing_channel(csv, &needles, false).as_deref(), Some("a1"));
        // Number targets also match the dialled number.
        let by_number = ["/4444@".to_string(), "2001".to_string()];
        assert_eq!(
            ringing_channel(csv, &by_number, true).as_deref(),
            Some("e1")
        );
        // Without the columns it needs, nothing is found.
        assert_eq!(ringing_channel("uuid,name\nx,y\n", &needles, true), None);
        // A number is not matched inside another one (name or destination 12001).
        let other = "uuid,direction,name,dest,callstate\n\
                     o1,outbound,sofia/internal/12001@10.0.0.4,12001,RINGING\n";
        assert_eq!(ringing_channel(other, &by_number, true), None);
        assert_eq!(
            ringing_channel(other, &["/12001@".into(), "12001".into()], true).as_deref(),
            Some("o1")
        );
        // Without a callstate column a matching outbound leg counts as ringing.
        let bare = "uuid,direction,name\nr1,outbound,sofia/internal/2001@h\n";
        assert_eq!(ringing_channel(bare, &needles, true).as_deref(), Some("r1"));
    }

    mod end_to_end {
        use super::super::super::testing::{
            apis, me, meta, one_code, run_bridged, run_unbridged, said, said_line, secs,
        };
        use serde_json::json;

        #[tokio::test]
        async fn nothing_ringing_in_show_channels_takes_the_no_target_child() {
            // The fake's `show channels` lists only this (inbound, answered) channel.
            let metaflow = one_code(
                "8",
                meta(
                    "intercept",
                    json!({"target_type": "number", "target_id": "2001"}),
                    json!({"no_target": said("nothing"), "_": said("default")}),
                ),
            );
            let sim = run_bridged(metaflow, secs(4), "*8@bridge+300ms").await;
            assert_eq!(
                apis(&sim),
                ["show channels".to_string(), said_line(&me(&sim), "nothing")]
            );
            let reply = sim
                .transcript
                .commands
                .iter()
                .find(|c| c.line == "api show channels")
                .and_then(|c| c.reply.clone())
                .unwrap_or_default();
            assert!(
                reply.contains(&me(&sim)) && reply.contains("inbound"),
                "{reply}"
            );
        }

        #[tokio::test]
        async fn a_user_without_devices_is_no_target_without_asking_the_switch() {
            let metaflow = json!({"digit_timeout": 1200, "patterns": {"^8(\\d+)$": meta(
                "intercept",
                json!({"target_type": "user", "target_id": "eeeeeeeeeeeeeeeeeeeeeeeeeeee0f09"}),
                json!({"no_target": said("nothing")}),
            )}});
            let sim = run_unbridged(metaflow, "*81@playback+300ms").await;
            assert_eq!(apis(&sim), [said_line(&me(&sim), "nothing")]);
        }
    }
}

//! One fake channel: its caller profile, its channel variables and its state, and the rendering
//! of every event FreeSWITCH fires for it, in the exact header order of the 1.10.12 traces.
//!
//! Header layout of a channel event (traces conn01-09):
//! ```text
//! Event-Name, Core-UUID, FreeSWITCH-Hostname/-Switchname/-IPv4/-IPv6,
//! Event-Date-Local/-GMT/-Timestamp, Event-Calling-File/-Function/-Line-Number, Event-Sequence,
//! [Hangup-Cause]                      (CHANNEL_HANGUP_COMPLETE only: the header repeats below)
//! Channel-State, Channel-Call-State, Channel-State-Number, Channel-Name, Unique-ID,
//! Call-Direction, Presence-Call-Direction, Channel-HIT-Dialplan, Channel-Call-UUID, Answer-State,
//! [Hangup-Cause]                      (once the channel hung up)
//! [Channel-Read-Codec-*, Channel-Write-Codec-*]   (once media is up)
//! Caller-* (the caller profile), [variable_* (all channel variables)], event-specific headers
//! ```
//! The `connect` reply (CHANNEL_DATA) additionally carries the caller profile a second time with
//! the `Channel-` prefix right after `Event-Sequence`, and ends with `Content-Type`, `Reply-Text`,
//! `Socket-Mode`, `Control`.
//!
//! Variables follow FreeSWITCH's storage rule: setting a variable deletes it and appends it at the
//! end, so the order of `variable_*` headers evolves exactly like on the real switch.
//!
//! The `variable_*` block and the caller block are rendered once and cached until they change,
//! so a call's dozens of 3-10 KB events cost mostly a memcpy (load generator).

use super::wire;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Which kind of real channel the fake imitates; it decides the variable set and media details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelKind {
    /// A SIP call from a registered user through mod_sofia (traces conn08, conn09): ~80 channel
    /// variables at `connect` (6.4 KB reply), media (PCMU) only after pre-answer/answer, DTMF
    /// source RTP. This is what production traffic looks like.
    #[default]
    Sip,
    /// The `loopback/<n>-b` leg of `originate loopback/...` (traces conn01-07): 17 variables at
    /// `connect` (3.6 KB reply), L16 media from the start, DTMF source UNKNOWN.
    Loopback,
}

/// What the scripted caller looks like: the inputs of the `connect` reply.
#[derive(Debug, Clone)]
pub struct ChannelProfile {
    /// SIP or loopback shape.
    pub kind: ChannelKind,
    /// `Unique-ID` / `variable_uuid`.
    pub uuid: String,
    /// `Caller-Destination-Number` (what the caller dialled).
    pub destination_number: String,
    /// `Caller-Caller-ID-Number` (and `sip_from_user`, `effective_caller_id_number`, ...).
    pub caller_id_number: String,
    /// `Caller-Caller-ID-Name` (and `sip_from_display`, `effective_caller_id_name`); empty = absent.
    pub caller_id_name: String,
    /// `variable_account_id`, as a dialplan `set` before `socket` would put it; `None` = absent.
    pub account_id: Option<String>,
    /// SIP realm: `domain_name`, `sip_req_host`, `sip_to_host`, `sip_from_host`, ...
    pub domain_name: String,
    /// Dialplan context (`Caller-Context`).
    pub context: String,
    /// The `socket` app's target, as in `socket <addr> async full` (`variable_socket_host`).
    pub socket_address: String,
    /// More variables set by the dialplan before `socket` (appended after `account_id`).
    pub extra_vars: Vec<(String, String)>,
}

impl ChannelProfile {
    /// A SIP caller `1001` (`SIPp 1001`) on realm `127.0.0.1` dialling `destination`, with the
    /// trace's `account_id` (`000...001`) and a fresh uuid.
    pub fn sip(destination: &str) -> Self {
        ChannelProfile {
            kind: ChannelKind::Sip,
            uuid: new_uuid(),
            destination_number: destination.to_string(),
            caller_id_number: "1001".into(),
            caller_id_name: "SIPp 1001".into(),
            account_id: Some("00000000000000000000000000000001".into()),
            domain_name: "127.0.0.1".into(),
            context: "default".into(),
            socket_address: "127.0.0.1:8084".into(),
            extra_vars: Vec::new(),
        }
    }

    /// A loopback leg as in trace conn01 (caller id `0000000000`, no name).
    pub fn loopback(destination: &str) -> Self {
        ChannelProfile {
            kind: ChannelKind::Loopback,
            caller_id_number: "0000000000".into(),
            caller_id_name: String::new(),
            ..ChannelProfile::sip(destination)
        }
    }
}

/// Random v4 uuid in FreeSWITCH's textual form.
pub fn new_uuid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0x0f,
        b[7],
        8 | (b[8] & 0x3),
        b[8] >> 4,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);
static SEQUENCE: AtomicU64 = AtomicU64::new(500);

/// Fixed switch identity, as in the traces.
const CORE_UUID: &str = "e685ddee-4158-4a37-b43c-2f6dc90790c7";
const HOSTNAME: &str = "vm";
const IPV4: &str = "192.0.2.2";
const IPV6: &str = "fd00::2";

/// Where an event claims to come from (`Event-Calling-File/-Function/-Line-Number`), copied
/// from the traces.
#[derive(Debug, Clone, Copy)]
pub struct Calling(pub &'static str, pub &'static str, pub u32);

/// `connect` reply.
pub const AT_PARSE_COMMAND: Calling = Calling("mod_event_socket.c", "parse_command", 2021);
/// CHANNEL_EXECUTE.
pub const AT_EXEC: Calling = Calling("switch_core_session.c", "switch_core_session_exec", 2944);
/// CHANNEL_EXECUTE_COMPLETE.
pub const AT_EXEC_DONE: Calling =
    Calling("switch_core_session.c", "switch_core_session_exec", 2967);
/// CHANNEL_ANSWER.
pub const AT_ANSWER: Calling = Calling(
    "switch_channel.c",
    "switch_channel_perform_mark_answered",
    3846,
);
/// CHANNEL_PROGRESS_MEDIA.
pub const AT_PRE_ANSWER: Calling = Calling(
    "switch_channel.c",
    "switch_channel_perform_mark_pre_answered",
    3560,
);
/// CHANNEL_PROGRESS (not in the traces; line number approximate).
pub const AT_RING_READY: Calling = Calling(
    "switch_channel.c",
    "switch_channel_perform_mark_ring_ready_value",
    3500,
);
/// CHANNEL_HANGUP.
pub const AT_HANGUP: Calling = Calling("switch_channel.c", "switch_channel_perform_hangup", 3445);
/// CHANNEL_PARK.
pub const AT_PARK: Calling = Calling("switch_ivr.c", "switch_ivr_park", 1002);
/// CHANNEL_UNPARK.
pub const AT_UNPARK: Calling = Calling("switch_ivr.c", "switch_ivr_park", 1213);
/// CHANNEL_STATE.
pub const AT_STATE: Calling = Calling(
    "switch_channel.c",
    "switch_channel_perform_set_running_state",
    2408,
);
/// CHANNEL_HANGUP_COMPLETE.
pub const AT_REPORTING: Calling = Calling(
    "switch_core_state_machine.c",
    "switch_core_session_reporting_state",
    943,
);
/// DTMF.
pub const AT_DTMF: Calling = Calling("switch_channel.c", "switch_channel_dequeue_dtmf", 677);
/// CHANNEL_BRIDGE / CHANNEL_UNBRIDGE (not in the traces; line numbers approximate).
pub const AT_BRIDGE: Calling = Calling("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", 0);
/// PLAYBACK_START / PLAYBACK_STOP (not in the traces; line numbers approximate).
pub const AT_PLAYBACK: Calling = Calling("switch_ivr_play_say.c", "switch_ivr_play_file", 0);
/// BACKGROUND_JOB.
pub const AT_API_EXEC: Calling = Calling("mod_event_socket.c", "api_exec", 1572);

/// Event serialization chosen by `myevents` / `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `text/event-plain` (percent-encoded header lines).
    #[default]
    Plain,
    /// `text/event-json`.
    Json,
}

/// Which optional blocks an event carries.
#[derive(Debug, Clone, Copy)]
pub struct EventShape {
    /// All channel variables as `variable_*` (A6: not on DTMF / CHANNEL_STATE).
    pub vars: bool,
    /// `Hangup-Cause` right after `Event-Sequence` (CHANNEL_HANGUP_COMPLETE's repeated header).
    pub leading_hangup_cause: bool,
}

/// Full channel data (EXECUTE, ANSWER, HANGUP...).
pub const WITH_VARS: EventShape = EventShape {
    vars: true,
    leading_hangup_cause: false,
};
/// Basic channel data only (DTMF, CHANNEL_STATE).
pub const NO_VARS: EventShape = EventShape {
    vars: false,
    leading_hangup_cause: false,
};

/// Micro-seconds since the epoch (`Event-Date-Timestamp` and the profile times).
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The state of one fake channel.
#[derive(Debug)]
pub struct Channel {
    kind: ChannelKind,
    uuid: String,
    channel_name: String,
    destination: String,
    caller_number: String,
    caller_name: String,
    context: String,
    vars: Vec<(String, String)>,
    /// `Channel-State` (running state).
    running_state: &'static str,
    /// `Channel-State-Number` (the state; 10 once hung up even while running CS_EXECUTE).
    state_number: u8,
    call_state: &'static str,
    answer_state: &'static str,
    hangup_cause: Option<String>,
    media: bool,
    acked: bool,
    created_us: i64,
    answered_us: i64,
    progress_us: i64,
    progress_media_us: i64,
    hangup_us: i64,
    transfer_us: i64,
    bridged_us: i64,
    // caches, indexed by Format as usize
    vars_cache: [Option<String>; 2],
    caller_cache: [Option<String>; 2],
    date_cache: (i64, String, String),
}

impl Channel {
    /// The channel as it is when the `socket` app dials the controller (before `connect`).
    pub fn new(profile: &ChannelProfile) -> Self {
        let created_us = now_us();
        let channel_name = match profile.kind {
            ChannelKind::Sip => format!(
                "sofia/internal/{}@{}",
                profile.caller_id_number, profile.domain_name
            ),
            ChannelKind::Loopback => format!("loopback/{}-b", profile.destination_number),
        };
        let mut ch = Channel {
            kind: profile.kind,
            uuid: profile.uuid.clone(),
            channel_name,
            destination: profile.destination_number.clone(),
            caller_number: profile.caller_id_number.clone(),
            caller_name: profile.caller_id_name.clone(),
            context: profile.context.clone(),
            vars: Vec::with_capacity(220),
            running_state: "CS_EXECUTE",
            state_number: 4,
            call_state: "RINGING",
            answer_state: "ringing",
            hangup_cause: None,
            media: profile.kind == ChannelKind::Loopback,
            acked: false,
            created_us,
            answered_us: 0,
            progress_us: 0,
            progress_media_us: 0,
            hangup_us: 0,
            transfer_us: 0,
            bridged_us: 0,
            vars_cache: [None, None],
            caller_cache: [None, None],
            date_cache: (-1, String::new(), String::new()),
        };
        ch.initial_vars(profile);
        ch
    }

    fn initial_vars(&mut self, p: &ChannelProfile) {
        let session_id = SESSION_IDS.fetch_add(1, Ordering::Relaxed).to_string();
        let socket_host = p
            .socket_address
            .rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| p.socket_address.clone());
        let uuid = p.uuid.clone();
        let dest = &p.destination_number;
        let dom = &p.domain_name;
        let num = &p.caller_id_number;
        let dp_match = format!("ARRAY::{dest}|:{dest}");
        match p.kind {
            ChannelKind::Loopback => {
                let other = new_uuid();
                let list: Vec<(&str, String)> = vec![
                    ("direction", "inbound".into()),
                    ("uuid", uuid.clone()),
                    ("session_id", session_id),
                    ("channel_name", self.channel_name.clone()),
                    ("read_codec", "L16".into()),
                    ("read_rate", "8000".into()),
                    ("write_codec", "L16".into()),
                    ("write_rate", "8000".into()),
                    ("origination_uuid", other.clone()),
                    ("other_loopback_leg_uuid", other),
                    ("loopback_leg", "B".into()),
                    ("DP_MATCH", dp_match),
                    ("call_uuid", uuid),
                ];
                for (k, v) in list {
                    self.vars.push((k.to_string(), v));
                }
            }
            ChannelKind::Sip => {
                let created = self.created_us.to_string();
                let (date_local, date_gmt) = format_dates(self.created_us / 1_000_000);
                let tag = format!("{}SIPpTag00{}", 10000 + (rand::random::<u16>() % 9000), 1);
                let call_id = format!("{}-{}@{}", 1, rand::random::<u32>() % 100000, dom);
                let name = if p.caller_id_name.is_empty() {
                    num.clone()
                } else {
                    p.caller_id_name.clone()
                };
                let list: Vec<(&str, String)> = vec![
                    ("direction", "inbound".into()),
                    ("uuid", uuid.clone()),
                    ("session_id", session_id),
                    ("sip_from_user", num.clone()),
                    ("sip_from_uri", format!("{num}@{dom}")),
                    ("sip_from_host", dom.clone()),
                    ("video_media_flow", "disabled".into()),
                    ("audio_media_flow", "disabled".into()),
                    ("text_media_flow", "disabled".into()),
                    ("channel_name", self.channel_name.clone()),
                    ("sip_call_id", call_id),
                    ("sip_local_network_addr", "127.0.0.1".into()),
                    ("sip_network_ip", "127.0.0.1".into()),
                    ("sip_network_port", "5070".into()),
                    ("sip_invite_stamp", created.clone()),
                    ("sip_received_ip", "127.0.0.1".into()),
                    ("sip_received_port", "5070".into()),
                    ("sip_via_protocol", "udp".into()),
                    ("sip_authorized", "true".into()),
                    ("Event-Name", "REQUEST_PARAMS".into()),
                    ("Core-UUID", CORE_UUID.into()),
                    ("FreeSWITCH-Hostname", HOSTNAME.into()),
                    ("FreeSWITCH-Switchname", HOSTNAME.into()),
                    ("FreeSWITCH-IPv4", IPV4.into()),
                    ("FreeSWITCH-IPv6", IPV6.into()),
                    ("Event-Date-Local", date_local),
                    ("Event-Date-GMT", date_gmt),
                    ("Event-Date-Timestamp", created),
                    ("Event-Calling-File", "sofia.c".into()),
                    ("Event-Calling-Function", "sofia_handle_sip_i_invite".into()),
                    ("Event-Calling-Line-Number", "10723".into()),
                    (
                        "Event-Sequence",
                        SEQUENCE.fetch_add(1, Ordering::Relaxed).to_string(),
                    ),
                    ("sip_number_alias", num.clone()),
                    ("sip_auth_username", num.clone()),
                    ("sip_auth_realm", dom.clone()),
                    ("number_alias", num.clone()),
                    ("requested_user_name", num.clone()),
                    ("requested_domain_name", dom.clone()),
                    ("record_stereo", "true".into()),
                    ("default_gateway", "127.0.0.1".into()),
                    ("default_areacode", "000".into()),
                    ("transfer_fallback_extension", "operator".into()),
                    ("user_context", p.context.clone()),
                    ("effective_caller_id_name", name.clone()),
                    ("effective_caller_id_number", num.clone()),
                    ("accountcode", num.clone()),
                    ("user_name", num.clone()),
                    ("domain_name", dom.clone()),
                    ("sip_from_user_stripped", num.clone()),
                    ("sip_from_tag", tag.clone()),
                    ("sofia_profile_name", "internal".into()),
                    ("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5060".into()),
                    ("recovery_profile_name", "internal".into()),
                    (
                        "sip_full_via",
                        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-10497-1-4".into(),
                    ),
                    ("sip_from_display", name.clone()),
                    (
                        "sip_full_from",
                        format!("\"{name}\" <sip:{num}@{dom}>;tag={tag}"),
                    ),
                    ("sip_full_to", format!("<sip:{dest}@{dom}>")),
                    ("sip_req_user", dest.clone()),
                    ("sip_req_port", "5060".into()),
                    ("sip_req_uri", format!("{dest}@{dom}:5060")),
                    ("sip_req_host", dom.clone()),
                    ("sip_to_user", dest.clone()),
                    ("sip_to_uri", format!("{dest}@{dom}")),
                    ("sip_to_host", dom.clone()),
                    ("sip_contact_user", num.clone()),
                    ("sip_contact_port", "5070".into()),
                    ("sip_contact_uri", format!("{num}@127.0.0.1:5070")),
                    ("sip_contact_host", "127.0.0.1".into()),
                    ("rtp_use_codec_string", "OPUS,PCMU,PCMA".into()),
                    ("sip_user_agent", "sipp-fslab".into()),
                    ("sip_via_host", "127.0.0.1".into()),
                    ("sip_via_port", "5070".into()),
                    ("max_forwards", "70".into()),
                    ("switch_r_sdp", REMOTE_SDP.into()),
                    (
                        "ep_codec_string",
                        "CORE_PCM_MODULE.PCMU@8000h@20i@64000b".into(),
                    ),
                    ("endpoint_disposition", "DELAYED NEGOTIATION".into()),
                    ("DP_MATCH", dp_match),
                    ("call_uuid", uuid),
                ];
                for (k, v) in list {
                    self.vars.push((k.to_string(), v));
                }
            }
        }
        if let Some(account) = &p.account_id {
            self.vars.push(("account_id".into(), account.clone()));
        }
        for (k, v) in &p.extra_vars {
            self.set_var(k, v);
        }
        self.set_var(
            "current_application_data",
            &format!("{} async full", p.socket_address),
        );
        self.set_var("current_application", "socket");
        self.set_var("socket_host", &socket_host);
        self.vars_cache = [None, None];
    }

    /// `Unique-ID`.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// `Channel-Name` (`sofia/internal/1001@127.0.0.1`, `loopback/1000-b`).
    pub fn channel_name(&self) -> &str {
        &self.channel_name
    }

    /// SIP or loopback.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// A channel variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All channel variables in FreeSWITCH's storage order.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// Sets a variable the way `switch_channel_set_variable` does: delete, then append at the
    /// end. An empty value deletes the variable.
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.unset_var(name);
        if !value.is_empty() {
            self.vars.push((name.to_string(), value.to_string()));
        }
        self.vars_cache = [None, None];
    }

    /// Deletes a variable.
    pub fn unset_var(&mut self, name: &str) {
        if let Some(pos) = self.vars.iter().position(|(k, _)| k == name) {
            self.vars.remove(pos);
            self.vars_cache = [None, None];
        }
    }

    /// `Hangup-Cause` once the channel hung up.
    pub fn hangup_cause(&self) -> Option<&str> {
        self.hangup_cause.as_deref()
    }

    /// True until the channel hangs up.
    pub fn is_up(&self) -> bool {
        self.hangup_cause.is_none()
    }

    /// `Answer-State` is `answered`.
    pub fn is_answered(&self) -> bool {
        self.answered_us != 0
    }

    /// Media is flowing (pre-answered or answered; loopback always).
    pub fn has_media(&self) -> bool {
        self.media
    }

    /// `Answer-State` (`ringing`, `early`, `answered`, `hangup`).
    pub fn answer_state(&self) -> &'static str {
        self.answer_state
    }

    /// `DTMF-Source` FreeSWITCH reports for this kind of channel.
    pub fn dtmf_source(&self) -> &'static str {
        match self.kind {
            ChannelKind::Sip => "RTP",
            ChannelKind::Loopback => "UNKNOWN",
        }
    }

    fn touch_caller(&mut self) {
        self.caller_cache = [None, None];
    }

    /// Early media: `Answer-State: early`, media variables, then (after the event)
    /// `Channel-Call-State: EARLY`. Returns false when media was already up.
    pub(crate) fn begin_pre_answer(&mut self) -> bool {
        if self.answer_state != "ringing" || !self.is_up() {
            return false;
        }
        self.answer_state = "early";
        self.progress_media_us = now_us();
        self.touch_caller();
        if self.kind == ChannelKind::Sip && !self.media {
            for (k, v) in SIP_MEDIA_VARS {
                self.set_var(k, v);
            }
            self.set_var("endpoint_disposition", "EARLY MEDIA");
        }
        self.media = true;
        true
    }

    /// After CHANNEL_PROGRESS_MEDIA fired.
    pub(crate) fn end_pre_answer(&mut self) {
        self.call_state = "EARLY";
    }

    /// Answer: `Answer-State: answered`, answered time. Returns false when already answered.
    pub(crate) fn begin_answer(&mut self) -> bool {
        if self.answered_us != 0 || !self.is_up() {
            return false;
        }
        self.answer_state = "answered";
        self.answered_us = now_us();
        self.touch_caller();
        if self.kind == ChannelKind::Sip {
            self.set_var("rtp_local_sdp_str", LOCAL_SDP);
        }
        self.media = true;
        true
    }

    /// After CHANNEL_ANSWER fired: the call state becomes ACTIVE and the disposition ANSWER.
    pub(crate) fn end_answer(&mut self) {
        self.call_state = "ACTIVE";
        self.set_var("endpoint_disposition", "ANSWER");
    }

    /// The caller's ACK to our 200 OK: mod_sofia re-sets the dialog variables (trace conn08,
    /// between the answer's EXECUTE_COMPLETE and the next EXECUTE). Once per call.
    pub(crate) fn sip_ack(&mut self) {
        if self.kind != ChannelKind::Sip || self.acked || !self.is_answered() {
            return;
        }
        self.acked = true;
        let to_tag: String = (0..13)
            .map(|_| {
                let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    [rand::random::<u8>() as usize % 62];
                c as char
            })
            .collect();
        let keep = |ch: &Channel, k: &str| ch.var(k).unwrap_or_default().to_string();
        let from_tag = keep(self, "sip_from_tag");
        let call_id = keep(self, "sip_call_id");
        let display = keep(self, "sip_from_display");
        let full_from = keep(self, "sip_full_from");
        let full_to = format!(
            "<sip:{}@{}>;tag={to_tag}",
            self.destination,
            keep(self, "sip_to_host")
        );
        self.set_var("sip_to_tag", &to_tag);
        self.set_var("sip_from_tag", &from_tag);
        self.set_var("sip_cseq", "2");
        self.set_var("sip_call_id", &call_id);
        self.set_var(
            "sip_full_via",
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-10497-1-9",
        );
        self.set_var("sip_from_display", &display);
        self.set_var("sip_full_from", &full_from);
        self.set_var("sip_full_to", &full_to);
    }

    /// `ring_ready`: CHANNEL_PROGRESS.
    pub(crate) fn ring_ready(&mut self) -> bool {
        if self.progress_us != 0 || self.answer_state != "ringing" {
            return false;
        }
        self.progress_us = now_us();
        self.touch_caller();
        true
    }

    /// Marks the bridge time (`Caller-Channel-Bridged-Time`).
    pub(crate) fn mark_bridged(&mut self) {
        self.bridged_us = now_us();
        self.touch_caller();
    }

    /// Marks the transfer time (`Caller-Channel-Transfer-Time`).
    pub(crate) fn mark_transferred(&mut self) {
        self.transfer_us = now_us();
        self.touch_caller();
    }

    /// Hangup: `Answer-State: hangup`, `Channel-State-Number: 10`, `Hangup-Cause`.
    pub(crate) fn hang_up(&mut self, cause: &str) {
        self.hangup_cause = Some(cause.to_string());
        self.answer_state = "hangup";
        self.state_number = 10;
    }

    /// CHANNEL_STATE CS_HANGUP.
    pub(crate) fn enter_cs_hangup(&mut self) {
        self.running_state = "CS_HANGUP";
    }

    /// CHANNEL_STATE CS_REPORTING: the call state becomes HANGUP and the hangup time is set.
    pub(crate) fn enter_cs_reporting(&mut self) {
        self.running_state = "CS_REPORTING";
        self.state_number = 11;
        self.call_state = "HANGUP";
        self.hangup_us = now_us();
        self.touch_caller();
    }

    /// The CDR variables FreeSWITCH adds before CHANNEL_HANGUP_COMPLETE (trace conn01/conn08).
    pub(crate) fn add_cdr_vars(&mut self, last_app: Option<(&str, &str)>, we_hung_up: bool) {
        let cause = self
            .hangup_cause
            .clone()
            .unwrap_or_else(|| "NORMAL_CLEARING".into());
        let q850 = super::apps::q850(&cause);
        let start = self.created_us;
        let end = if self.hangup_us != 0 {
            self.hangup_us
        } else {
            now_us()
        };
        let answer = self.answered_us;
        let pm = self.progress_media_us;
        let progress = self.progress_us;
        let stamp = |us: i64| format_dates(us / 1_000_000).0;
        let mut v: Vec<(&str, String)> = vec![
            ("hangup_cause", cause.clone()),
            ("hangup_cause_q850", q850.to_string()),
            ("digits_dialed", "none".into()),
            ("start_stamp", stamp(start)),
            ("profile_start_stamp", stamp(start)),
        ];
        if answer != 0 {
            v.push(("answer_stamp", stamp(answer)));
        }
        if pm != 0 {
            v.push(("progress_media_stamp", stamp(pm)));
        }
        v.push(("end_stamp", stamp(end)));
        let epoch = |us: i64| (us / 1_000_000).to_string();
        v.extend([
            ("start_epoch", epoch(start)),
            ("start_uepoch", start.to_string()),
            ("profile_start_epoch", epoch(start)),
            ("profile_start_uepoch", start.to_string()),
            ("answer_epoch", epoch(answer)),
            ("answer_uepoch", answer.to_string()),
            ("bridge_epoch", epoch(self.bridged_us)),
            ("bridge_uepoch", self.bridged_us.to_string()),
            ("last_hold_epoch", "0".into()),
            ("last_hold_uepoch", "0".into()),
            ("hold_accum_seconds", "0".into()),
            ("hold_accum_usec", "0".into()),
            ("hold_accum_ms", "0".into()),
            ("resurrect_epoch", "0".into()),
            ("resurrect_uepoch", "0".into()),
            ("progress_epoch", epoch(progress)),
            ("progress_uepoch", progress.to_string()),
            ("progress_media_epoch", epoch(pm)),
            ("progress_media_uepoch", pm.to_string()),
            ("end_epoch", epoch(end)),
            ("end_uepoch", end.to_string()),
        ]);
        if let Some((app, arg)) = last_app {
            v.push(("last_app", app.to_string()));
            if !arg.is_empty() {
                v.push(("last_arg", arg.to_string()));
            }
        }
        let caller_id = if self.caller_name.is_empty() {
            self.caller_number.clone()
        } else {
            format!("\"{}\" <{}>", self.caller_name, self.caller_number)
        };
        v.push(("caller_id", caller_id));
        let dur = |from: i64, to: i64| if from == 0 || to < from { 0 } else { to - from };
        let total = dur(start, end);
        let bill = if answer != 0 { dur(answer, end) } else { 0 };
        let answered_after = if answer != 0 { dur(start, answer) } else { 0 };
        let pm_after = if pm != 0 { dur(start, pm) } else { 0 };
        let progress_after = if progress != 0 {
            dur(start, progress)
        } else {
            0
        };
        // FreeSWITCH lists the *sec, then *msec, then *usec families; duration, billsec and
        // flow_billsec round up to the next second, the others round down (trace conn01).
        const NAMES: [[&str; 7]; 3] = [
            [
                "duration",
                "billsec",
                "progresssec",
                "answersec",
                "waitsec",
                "progress_mediasec",
                "flow_billsec",
            ],
            [
                "mduration",
                "billmsec",
                "progressmsec",
                "answermsec",
                "waitmsec",
                "progress_mediamsec",
                "flow_billmsec",
            ],
            [
                "uduration",
                "billusec",
                "progressusec",
                "answerusec",
                "waitusec",
                "progress_mediausec",
                "flow_billusec",
            ],
        ];
        for (names, div) in NAMES.iter().zip([1_000_000i64, 1_000, 1]) {
            let up = |x: i64| {
                if div == 1_000_000 && x % div != 0 {
                    x / div + 1
                } else {
                    x / div
                }
            };
            let values = [
                up(total),
                up(bill),
                progress_after / div,
                answered_after / div,
                0,
                pm_after / div,
                up(total),
            ];
            for (name, value) in names.iter().zip(values) {
                v.push((name, value.to_string()));
            }
        }
        for (k, val) in v {
            self.set_var(k, &val);
        }
        match self.kind {
            ChannelKind::Loopback => self.set_var("is_loopback", "1"),
            ChannelKind::Sip => {
                if self.var("sip_hangup_disposition").is_none() {
                    let dispo = if !we_hung_up {
                        "recv_bye"
                    } else if self.is_answered() {
                        "send_bye"
                    } else {
                        "send_refuse"
                    };
                    self.set_var("sip_hangup_disposition", dispo);
                }
                let secs = (bill / 20_000).max(0);
                for (k, val) in SIP_RTP_STATS {
                    let val = match *k {
                        "rtp_audio_out_packet_count" | "rtp_audio_out_media_packet_count" => {
                            secs.to_string()
                        }
                        "rtp_audio_out_raw_bytes" | "rtp_audio_out_media_bytes" => {
                            (secs * 172).to_string()
                        }
                        _ => val.to_string(),
                    };
                    self.set_var(k, &val);
                }
            }
        }
    }

    fn dates(&mut self) -> (i64, &str, &str) {
        let us = now_us();
        let secs = us / 1_000_000;
        if self.date_cache.0 != secs {
            let (l, g) = format_dates(secs);
            self.date_cache = (secs, l, g);
        }
        (us, &self.date_cache.1, &self.date_cache.2)
    }

    fn push_prefix(&mut self, s: &mut String, fmt: Format, name: &str, at: Calling) {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let (us, local, gmt) = self.dates();
        let (local, gmt) = (local.to_string(), gmt.to_string());
        let mut h = Headers::new(s, fmt, true);
        h.add("Event-Name", name);
        h.add("Core-UUID", CORE_UUID);
        h.add("FreeSWITCH-Hostname", HOSTNAME);
        h.add("FreeSWITCH-Switchname", HOSTNAME);
        h.add("FreeSWITCH-IPv4", IPV4);
        h.add("FreeSWITCH-IPv6", IPV6);
        h.add("Event-Date-Local", &local);
        h.add("Event-Date-GMT", &gmt);
        h.add("Event-Date-Timestamp", &us.to_string());
        h.add("Event-Calling-File", at.0);
        h.add("Event-Calling-Function", at.1);
        h.add("Event-Calling-Line-Number", &at.2.to_string());
        h.add("Event-Sequence", &seq.to_string());
    }

    fn push_channel_block(&self, s: &mut String, fmt: Format) {
        let mut h = Headers::new(s, fmt, false);
        h.add("Channel-State", self.running_state);
        h.add("Channel-Call-State", self.call_state);
        h.add("Channel-State-Number", &self.state_number.to_string());
        h.add("Channel-Name", &self.channel_name);
        h.add("Unique-ID", &self.uuid);
        h.add("Call-Direction", "inbound");
        h.add("Presence-Call-Direction", "inbound");
        h.add("Channel-HIT-Dialplan", "true");
        h.add("Channel-Call-UUID", &self.uuid);
        h.add("Answer-State", self.answer_state);
        if let Some(cause) = &self.hangup_cause {
            h.add("Hangup-Cause", cause);
        }
        if self.media {
            let (codec, bits) = match self.kind {
                ChannelKind::Sip => ("PCMU", "64000"),
                ChannelKind::Loopback => ("L16", "128000"),
            };
            h.add("Channel-Read-Codec-Name", codec);
            h.add("Channel-Read-Codec-Rate", "8000");
            h.add("Channel-Read-Codec-Bit-Rate", bits);
            h.add("Channel-Write-Codec-Name", codec);
            h.add("Channel-Write-Codec-Rate", "8000");
            h.add("Channel-Write-Codec-Bit-Rate", bits);
        }
    }

    fn render_profile(&self, s: &mut String, fmt: Format, prefix: &str) {
        let mut h = Headers::new(s, fmt, false);
        let mut add = |suffix: &str, value: &str| {
            let mut name = String::with_capacity(prefix.len() + suffix.len() + 1);
            name.push_str(prefix);
            name.push('-');
            name.push_str(suffix);
            h.add(&name, value);
        };
        let sip = self.kind == ChannelKind::Sip;
        add("Direction", "inbound");
        add("Logical-Direction", "inbound");
        if sip {
            add("Username", &self.caller_number);
        }
        add("Dialplan", if sip { "XML" } else { "xml" });
        if !self.caller_name.is_empty() {
            add("Caller-ID-Name", &self.caller_name);
        }
        add("Caller-ID-Number", &self.caller_number);
        if !self.caller_name.is_empty() {
            add("Orig-Caller-ID-Name", &self.caller_name);
        }
        add("Orig-Caller-ID-Number", &self.caller_number);
        if !sip {
            add("Callee-ID-Name", "Outbound Call");
            add("Callee-ID-Number", "default");
        } else {
            add("Network-Addr", "127.0.0.1");
        }
        add("ANI", &self.caller_number);
        add("Destination-Number", &self.destination);
        add("Unique-ID", &self.uuid);
        add("Source", if sip { "mod_sofia" } else { "mod_loopback" });
        add("Context", &self.context);
        add("Channel-Name", &self.channel_name);
        add("Profile-Index", "1");
        let created = self.created_us.to_string();
        add("Profile-Created-Time", &created);
        add("Channel-Created-Time", &created);
        add("Channel-Answered-Time", &self.answered_us.to_string());
        add("Channel-Progress-Time", &self.progress_us.to_string());
        add(
            "Channel-Progress-Media-Time",
            &self.progress_media_us.to_string(),
        );
        add("Channel-Hangup-Time", &self.hangup_us.to_string());
        add("Channel-Transfer-Time", &self.transfer_us.to_string());
        add("Channel-Resurrect-Time", "0");
        add("Channel-Bridged-Time", &self.bridged_us.to_string());
        add("Channel-Last-Hold", "0");
        add("Channel-Hold-Accum", "0");
        add("Screen-Bit", "true");
        add("Privacy-Hide-Name", "false");
        add("Privacy-Hide-Number", "false");
    }

    fn push_caller_block(&mut self, s: &mut String, fmt: Format) {
        let i = fmt as usize;
        if self.caller_cache[i].is_none() {
            let mut block = String::with_capacity(1600);
            self.render_profile(&mut block, fmt, "Caller");
            self.caller_cache[i] = Some(block);
        }
        if let Some(block) = &self.caller_cache[i] {
            s.push_str(block);
        }
    }

    fn push_vars_block(&mut self, s: &mut String, fmt: Format) {
        let i = fmt as usize;
        if self.vars_cache[i].is_none() {
            let mut block = String::with_capacity(self.vars.len() * 48);
            {
                let mut h = Headers::new(&mut block, fmt, false);
                let mut name = String::with_capacity(64);
                for (k, v) in &self.vars {
                    name.clear();
                    name.push_str("variable_");
                    name.push_str(k);
                    h.add(&name, v);
                }
            }
            self.vars_cache[i] = Some(block);
        }
        if let Some(block) = &self.vars_cache[i] {
            s.push_str(block);
        }
    }

    /// Serializes one channel event (body only, no frame) in `fmt`.
    pub fn render_event_body(
        &mut self,
        fmt: Format,
        name: &str,
        at: Calling,
        shape: EventShape,
        tail: &[(&str, &str)],
    ) -> String {
        let mut s = String::with_capacity(if shape.vars {
            2400 + self.vars.len() * 48
        } else {
            2200
        });
        if fmt == Format::Json {
            s.push('{');
        }
        self.push_prefix(&mut s, fmt, name, at);
        if shape.leading_hangup_cause {
            if let Some(cause) = self.hangup_cause.clone() {
                Headers::new(&mut s, fmt, false).add("Hangup-Cause", &cause);
            }
        }
        self.push_channel_block(&mut s, fmt);
        self.push_caller_block(&mut s, fmt);
        if shape.vars {
            self.push_vars_block(&mut s, fmt);
        }
        {
            let mut h = Headers::new(&mut s, fmt, false);
            for (k, v) in tail {
                h.add(k, v);
            }
        }
        match fmt {
            Format::Plain => s.push('\n'),
            Format::Json => s.push('}'),
        }
        s
    }

    /// Appends one channel event frame to `out`.
    pub fn render_event(
        &mut self,
        out: &mut Vec<u8>,
        fmt: Format,
        name: &str,
        at: Calling,
        shape: EventShape,
        tail: &[(&str, &str)],
    ) {
        let body = self.render_event_body(fmt, name, at, shape, tail);
        wire::event_frame(out, fmt == Format::Json, &body);
    }

    /// Appends a non-channel event (BACKGROUND_JOB): the common prefix, `headers`, and an
    /// optional body (plain: inner `Content-Length` + blank line + body; JSON: `Content-Length`
    /// and `_body` members), as FreeSWITCH serializes it (trace conn05).
    pub fn render_global_event(
        &mut self,
        out: &mut Vec<u8>,
        fmt: Format,
        name: &str,
        at: Calling,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) {
        let mut s = String::with_capacity(1024 + body.map_or(0, str::len));
        if fmt == Format::Json {
            s.push('{');
        }
        self.push_prefix(&mut s, fmt, name, at);
        {
            let mut h = Headers::new(&mut s, fmt, false);
            for (k, v) in headers {
                h.add(k, v);
            }
            if let Some(b) = body {
                h.add("Content-Length", &b.len().to_string());
                if fmt == Format::Json {
                    h.add("_body", b);
                }
            }
        }
        match (fmt, body) {
            (Format::Plain, Some(b)) => {
                s.push('\n');
                s.push_str(b);
            }
            (Format::Plain, None) => s.push('\n'),
            (Format::Json, _) => s.push('}'),
        }
        wire::event_frame(out, fmt == Format::Json, &s);
    }

    /// Appends the `connect` reply: CHANNEL_DATA serialized plain as one header block with no
    /// Content-Length, ending with `Content-Type: command/reply`, `Reply-Text: %2BOK%0A`,
    /// `Socket-Mode: async`, `Control: full` (trace conn01, byte shape).
    pub fn render_connect_reply(&mut self, out: &mut Vec<u8>) {
        let mut s = String::with_capacity(4000 + self.vars.len() * 48);
        self.push_prefix(&mut s, Format::Plain, "CHANNEL_DATA", AT_PARSE_COMMAND);
        self.render_profile(&mut s, Format::Plain, "Channel");
        self.push_channel_block(&mut s, Format::Plain);
        self.push_caller_block(&mut s, Format::Plain);
        self.push_vars_block(&mut s, Format::Plain);
        let mut h = Headers::new(&mut s, Format::Plain, false);
        h.add("Content-Type", "command/reply");
        h.add("Reply-Text", "+OK\n");
        h.add("Socket-Mode", "async");
        h.add("Control", "full");
        s.push('\n');
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends headers in one format, tracking the JSON comma.
struct Headers<'a> {
    s: &'a mut String,
    fmt: Format,
    first: bool,
}

impl<'a> Headers<'a> {
    fn new(s: &'a mut String, fmt: Format, first: bool) -> Self {
        Headers { s, fmt, first }
    }

    fn add(&mut self, name: &str, value: &str) {
        match self.fmt {
            Format::Plain => wire::push_plain_header(self.s, name, value),
            Format::Json => wire::push_json_member(self.s, self.first, name, value),
        }
        self.first = false;
    }
}

/// `Event-Date-Local` and `Event-Date-GMT` for a Unix time (both rendered in UTC).
pub fn format_dates(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = WD[days.rem_euclid(7) as usize];
    let mn = MN[((mo - 1).clamp(0, 11)) as usize];
    (
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}"),
        format!("{wd}, {d:02} {mn} {y:04} {h:02}:{m:02}:{s:02} GMT"),
    )
}

/// The offer the SIP caller sent (trace conn08, `variable_switch_r_sdp`).
const REMOTE_SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

/// The answer FreeSWITCH sent (trace conn08, `variable_rtp_local_sdp_str`, set at answer).
const LOCAL_SDP: &str = "v=0\no=FreeSWITCH 1795760387 1795760388 IN IP4 127.0.0.1\ns=FreeSWITCH\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 16494 RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na=ptime:20\na=sendrecv\n";

/// Variables mod_sofia sets when media comes up (trace conn08, CHANNEL_PROGRESS_MEDIA), in order.
const SIP_MEDIA_VARS: &[(&str, &str)] = &[
    ("rtp_use_codec_string", "OPUS,PCMU,PCMA"),
    ("remote_video_media_flow", "inactive"),
    ("remote_text_media_flow", "inactive"),
    ("remote_audio_media_flow", "sendrecv"),
    ("audio_media_flow", "sendrecv"),
    ("rtp_audio_recv_pt", "0"),
    ("rtp_use_codec_name", "PCMU"),
    ("rtp_use_codec_rate", "8000"),
    ("rtp_use_codec_ptime", "20"),
    ("rtp_use_codec_channels", "1"),
    ("rtp_last_audio_codec_string", "PCMU@8000h@20i@1c"),
    ("read_codec", "PCMU"),
    ("original_read_codec", "PCMU"),
    ("read_rate", "8000"),
    ("original_read_rate", "8000"),
    ("write_codec", "PCMU"),
    ("write_rate", "8000"),
    ("dtmf_type", "rfc2833"),
    ("local_media_ip", "127.0.0.1"),
    ("local_media_port", "16494"),
    ("advertised_media_ip", "127.0.0.1"),
    ("rtp_use_timer_name", "soft"),
    ("rtp_use_pt", "0"),
    ("rtp_use_ssrc", "2869891449"),
    ("rtp_2833_send_payload", "101"),
    ("rtp_2833_recv_payload", "101"),
    ("remote_media_ip", "127.0.0.1"),
    ("remote_media_port", "6000"),
];

/// RTP statistics mod_sofia adds to CHANNEL_HANGUP_COMPLETE (trace conn08/conn09).
const SIP_RTP_STATS: &[(&str, &str)] = &[
    ("rtp_audio_in_raw_bytes", "0"),
    ("rtp_audio_in_media_bytes", "0"),
    ("rtp_audio_in_packet_count", "0"),
    ("rtp_audio_in_media_packet_count", "0"),
    ("rtp_audio_in_skip_packet_count", "0"),
    ("rtp_audio_in_jitter_packet_count", "0"),
    ("rtp_audio_in_dtmf_packet_count", "0"),
    ("rtp_audio_in_cng_packet_count", "0"),
    ("rtp_audio_in_flush_packet_count", "0"),
    ("rtp_audio_in_largest_jb_size", "0"),
    ("rtp_audio_in_jitter_min_variance", "0.00"),
    ("rtp_audio_in_jitter_max_variance", "0.00"),
    ("rtp_audio_in_jitter_loss_rate", "0.00"),
    ("rtp_audio_in_jitter_burst_rate", "0.00"),
    ("rtp_audio_in_mean_interval", "0.00"),
    ("rtp_audio_in_flaw_total", "0"),
    ("rtp_audio_in_quality_percentage", "100.00"),
    ("rtp_audio_in_mos", "4.50"),
    ("rtp_audio_out_raw_bytes", "0"),
    ("rtp_audio_out_media_bytes", "0"),
    ("rtp_audio_out_packet_count", "0"),
    ("rtp_audio_out_media_packet_count", "0"),
    ("rtp_audio_out_skip_packet_count", "0"),
    ("rtp_audio_out_dtmf_packet_count", "0"),
    ("rtp_audio_out_cng_packet_count", "0"),
    ("rtp_audio_rtcp_packet_count", "0"),
    ("rtp_audio_rtcp_octet_count", "0"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_the_trace_format() {
        // 1795776821 = Fri, 27 Nov 2026 10:53:41 GMT (trace conn01).
        let (local, gmt) = format_dates(1_795_776_821);
        assert_eq!(local, "2026-11-27 10:53:41");
        assert_eq!(gmt, "Fri, 27 Nov 2026 10:53:41 GMT");
        assert_eq!(format_dates(0).1, "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn set_var_moves_to_the_end() {
        let mut ch = Channel::new(&ChannelProfile::loopback("1000"));
        let n = ch.vars().len();
        ch.set_var("direction", "inbound");
        assert_eq!(ch.vars().len(), n);
        assert_eq!(ch.vars().last().map(|(k, _)| k.as_str()), Some("direction"));
        ch.set_var("direction", "");
        assert_eq!(ch.var("direction"), None);
    }

    #[test]
    fn uuid_shape() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_eq!(u.matches('-').count(), 4);
    }

    #[test]
    fn json_event_is_valid_json_with_repeated_headers() {
        let mut ch = Channel::new(&ChannelProfile::sip("1000"));
        ch.hang_up("USER_BUSY");
        let body = ch.render_event_body(
            Format::Json,
            "CHANNEL_HANGUP_COMPLETE",
            AT_REPORTING,
            EventShape {
                vars: true,
                leading_hangup_cause: true,
            },
            &[],
        );
        assert_eq!(body.matches("\"Hangup-Cause\":\"USER_BUSY\"").count(), 2);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid json");
        assert_eq!(v["variable_DP_MATCH"][0], "1000");
        assert!(!body.ends_with('\n'));
    }
}

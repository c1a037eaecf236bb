//! Everything that happened on one fake call, for assertions (tests), timelines (`simulate`) and
//! latency statistics (`loadgen`).

use std::time::Duration;

/// One command the controller sent, as the fake parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Position in arrival order, from 0 (`connect` is normally 0).
    pub index: usize,
    /// Arrival time since the fake dialled.
    pub at: Duration,
    /// The command line (`sendmsg`, `api uuid_break ... all`, `linger 10`).
    pub line: String,
    /// Headers in wire order, values taken literally (FreeSWITCH does not decode them).
    pub headers: Vec<(String, String)>,
    /// The body announced by `Content-Length`, if any.
    pub body: Option<String>,
    /// What the fake answered (`Reply-Text`, or the `api/response` body); `None` if it did not.
    pub reply: Option<String>,
}

impl Received {
    /// Header lookup, case-insensitive like FreeSWITCH's.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first word of the command line (`sendmsg`, `api`, `linger`, ...).
    pub fn verb(&self) -> &str {
        self.line.split_whitespace().next().unwrap_or_default()
    }

    /// The rest of the command line after the verb.
    pub fn arg(&self) -> &str {
        self.line
            .trim_start()
            .split_once(' ')
            .map(|(_, rest)| rest.trim())
            .unwrap_or_default()
    }

    /// `call-command` of a `sendmsg`.
    pub fn call_command(&self) -> Option<&str> {
        if self.verb().eq_ignore_ascii_case("sendmsg") {
            self.header("call-command")
        } else {
            None
        }
    }

    /// `execute-app-name` of a `sendmsg` execute.
    pub fn app(&self) -> Option<&str> {
        match self.call_command() {
            Some(c) if c.eq_ignore_ascii_case("execute") => self.header("execute-app-name"),
            _ => None,
        }
    }

    /// The app argument: `execute-app-arg`, else the text body (as FreeSWITCH resolves it).
    pub fn app_arg(&self) -> Option<&str> {
        match self.header("execute-app-arg") {
            Some(arg) if !arg.is_empty() => Some(arg),
            _ => self.body.as_deref(),
        }
    }
}

/// One frame the fake wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFrame {
    /// Write time since the fake dialled.
    pub at: Duration,
    /// `command/reply`, `api/response`, `text/event-plain`, `text/event-json`,
    /// `text/disconnect-notice`, or `raw` (fault bytes).
    pub content_type: &'static str,
    /// `Event-Name` of an event (or `CHANNEL_DATA` for the connect reply).
    pub event: Option<String>,
    /// `Application` of an EXECUTE / EXECUTE_COMPLETE.
    pub application: Option<String>,
    /// `Application-Response` of an EXECUTE_COMPLETE.
    pub response: Option<String>,
    /// `Application-UUID` of an EXECUTE / EXECUTE_COMPLETE.
    pub app_uuid: Option<String>,
    /// `Reply-Text` of a reply, `Content-Disposition` of a notice, the body of an api response.
    pub text: Option<String>,
    /// The exact bytes, when the script asked for them ([`super::CallScript::record_frames`]).
    pub bytes: Vec<u8>,
}

/// An app the fake actually started (it sent CHANNEL_EXECUTE, or would have with `myevents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedApp {
    /// App name.
    pub app: String,
    /// `Application-Data` (after `${var}` expansion).
    pub arg: String,
    /// `Application-UUID` (the controller's `event-uuid`, or a random one).
    pub app_uuid: String,
    /// Start time since the fake dialled.
    pub started: Duration,
    /// Completion time; `None` if it never completed (fault, or the socket went away).
    pub completed: Option<Duration>,
    /// `Application-Response` at completion.
    pub response: Option<String>,
}

/// Who ended the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HangupBy {
    /// The scripted caller hung up (`hangup_after`, or the caller side of a bridge).
    Caller,
    /// The controller asked: `hangup` app, `call-command: hangup`, `api uuid_kill`.
    Controller,
    /// The switch did it itself: unknown app (DESTINATION_OUT_OF_ORDER), a failed bridge
    /// without `continue_on_fail`, `respond 4xx`, the end of a transferred call.
    Switch(String),
}

/// The channel's hangup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hangup {
    /// `Hangup-Cause`.
    pub cause: String,
    /// Who.
    pub by: HangupBy,
    /// When, since the fake dialled.
    pub at: Duration,
}

/// How the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// The controller closed the socket (EOF).
    ControllerClosed,
    /// The fake closed it as FreeSWITCH would: after `exit`, at hangup without linger, or when
    /// the linger time ran out.
    SwitchClosed,
    /// No command came within the first-command deadline (25 s on a real switch).
    FirstCommandTimeout,
    /// The script's safety limit ran out.
    SafetyTimeout,
    /// A [`super::Fault`] closed the connection.
    Fault(String),
    /// The controller sent something unparseable; the fake closed the connection.
    ProtocolError(String),
    /// Reading or writing the socket failed.
    Io(String),
}

/// The record of one fake call.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Channel uuid.
    pub uuid: String,
    /// Every command received, in order.
    pub commands: Vec<Received>,
    /// Every frame written, in order.
    pub frames: Vec<SentFrame>,
    /// Apps started, in order.
    pub apps: Vec<ExecutedApp>,
    /// DTMF the caller pressed (time since dial, digit).
    pub dtmf: Vec<(Duration, char)>,
    /// The hangup, if the channel hung up.
    pub hangup: Option<Hangup>,
    /// When CHANNEL_HANGUP_COMPLETE was produced (sent if subscribed).
    pub hangup_complete_at: Option<Duration>,
    /// How the connection ended.
    pub end: Option<CallEnd>,
    /// When the `connect` reply went out.
    pub connected_at: Option<Duration>,
    /// When the connection ended.
    pub ended_at: Duration,
    /// `linger` requested: `Some(-1)` forever, `Some(n)` seconds; `None` if never (or `nolinger`).
    pub linger: Option<i64>,
    /// `resume` was sent: when the socket goes away mid-call, FreeSWITCH hands the channel back
    /// to the dialplan.
    pub resume_requested: bool,
    /// The controller closed the socket while the channel was still up (and not transferred).
    pub controller_left_mid_call: bool,
    /// The controller closed the socket after CHANNEL_HANGUP_COMPLETE was sent.
    pub controller_closed_after_hangup_complete: bool,
    /// `transfer` / `uuid_transfer` destination, if the call left that way.
    pub transferred_to: Option<String>,
    /// sendmsg executes that did nothing (dead channel, flushed queue), with the reason.
    pub skipped: Vec<(usize, String)>,
    /// Things the fake disliked about the controller's input (never a panic).
    pub errors: Vec<String>,
    /// Controller turnaround per command: time from the completion of the previous command
    /// (its EXECUTE_COMPLETE for an execute, else its reply) to this command's arrival.
    /// Pipelined commands (sent before the previous one completed) are not counted.
    pub turnarounds: Vec<Duration>,
}

impl Transcript {
    /// `(app, arg)` of every app the switch started, in order.
    pub fn executed(&self) -> Vec<(String, String)> {
        self.apps
            .iter()
            .map(|a| (a.app.clone(), a.arg.clone()))
            .collect()
    }

    /// Names of the apps started, in order.
    pub fn app_names(&self) -> Vec<String> {
        self.apps.iter().map(|a| a.app.clone()).collect()
    }

    /// `(app, response)` of every app that completed.
    pub fn app_responses(&self) -> Vec<(String, String)> {
        self.apps
            .iter()
            .filter_map(|a| Some((a.app.clone(), a.response.clone()?)))
            .collect()
    }

    /// The command lines received (`connect`, `myevents`, `sendmsg`, ...).
    pub fn command_lines(&self) -> Vec<String> {
        self.commands.iter().map(|c| c.line.clone()).collect()
    }

    /// `(app, arg)` of every `sendmsg` execute received, run or not.
    pub fn requested_apps(&self) -> Vec<(String, String)> {
        self.commands
            .iter()
            .filter_map(|c| {
                Some((
                    c.app()?.to_string(),
                    c.app_arg().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }

    /// Event names sent, in order (`CHANNEL_DATA` is the connect reply).
    pub fn events(&self) -> Vec<String> {
        self.frames.iter().filter_map(|f| f.event.clone()).collect()
    }

    /// The hangup cause, if the channel hung up.
    pub fn hangup_cause(&self) -> Option<&str> {
        self.hangup.as_ref().map(|h| h.cause.as_str())
    }

    /// True when the controller walked away mid-call with `resume` set: FreeSWITCH continues
    /// the dialplan after the `socket` app (the operator's fallback).
    pub fn handed_back_to_dialplan(&self) -> bool {
        self.controller_left_mid_call && self.resume_requested
    }

    /// Every byte the fake wrote, concatenated (needs `record_frames`).
    pub fn wire_bytes(&self) -> Vec<u8> {
        self.frames.iter().flat_map(|f| f.bytes.clone()).collect()
    }

    /// The `p`-quantile (0.0-1.0) of the controller turnarounds, nearest-rank.
    pub fn turnaround_quantile(&self, p: f64) -> Option<Duration> {
        quantile(&self.turnarounds, p)
    }
}

/// Nearest-rank quantile of a sample (`p` in 0.0-1.0); `None` for an empty sample.
pub fn quantile(sample: &[Duration], p: f64) -> Option<Duration> {
    if sample.is_empty() {
        return None;
    }
    let mut v = sample.to_vec();
    v.sort_unstable();
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let ms = |n| Duration::from_millis(n);
        let s: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&s, 0.5), Some(ms(50)));
        assert_eq!(quantile(&s, 0.99), Some(ms(99)));
        assert_eq!(quantile(&s, 0.999), Some(ms(100)));
        assert_eq!(quantile(&s, 0.0), Some(ms(1)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn received_accessors() {
        let r = Received {
            index: 3,
            at: Duration::ZERO,
            line: "sendmsg".into(),
            headers: vec![
                ("call-command".into(), "execute".into()),
                ("Execute-App-Name".into(), "playback".into()),
                ("content-type".into(), "text/plain".into()),
            ],
            body: Some("a\nb".into()),
            reply: Some("+OK".into()),
        };
        assert_eq!(r.app(), Some("playback"));
        assert_eq!(r.app_arg(), Some("a\nb"));
        assert_eq!(r.verb(), "sendmsg");
    }
}

//! A faithful stand-in for FreeSWITCH's mod_event_socket in outbound mode (`socket <addr> async
//! full`): the test double of every engine test, of `callflowd simulate` and of the load
//! generator.
//!
//! # What it is
//!
//! [`dial`] plays one call: it connects to the controller like the `socket` app does (TCP,
//! TCP_NODELAY), waits for `connect`, answers with a realistic CHANNEL_DATA block, then answers
//! every command the way FreeSWITCH 1.10.12 does and runs the apps it is told to run against a
//! scripted caller ([`CallScript`]): digits pressed at given times, a hang-up at a given time,
//! missing prompt files, bridge outcomes, faults. It returns a [`Transcript`] of everything that
//! happened. [`ManualSwitch`] is the step-by-step variant for tests that want to play the switch
//! themselves, built on freeswitch-esl-tokio's `MockConnection`.
//!
//! ```no_run
//! use callflowd::fakeswitch::{dial, CallScript};
//! use std::time::Duration;
//! # async fn demo(addr: std::net::SocketAddr) -> std::io::Result<()> {
//! let script = CallScript::new("1000")
//!     .account(Some("acct-1"))
//!     .dtmf("1@300ms").expect("valid digits")
//!     .hangup_after(Duration::from_secs(5));
//! let transcript = dial(addr, script).await?;
//! assert_eq!(transcript.executed()[0].0, "answer");
//! assert_eq!(transcript.hangup_cause(), Some("NORMAL_CLEARING"));
//! # Ok(()) }
//! ```
//!
//! # Ground truth
//!
//! `/work/shared/spec/traces/` (byte-exact captures from FreeSWITCH 1.10.12) and
//! `/work/shared/spec/esl-outbound.md`. Where the two differ the traces win. The fidelity tests
//! (`tests/fakeswitch_fidelity.rs`) compare the fake's bytes with the captures.
//!
//! Modelled exactly as captured:
//! * the `connect` reply: one header block, no Content-Length, `Event-Name: CHANNEL_DATA` first,
//!   `Channel-*` profile, channel block, `Caller-*`, `variable_*`, then `Content-Type:
//!   command/reply`, `Reply-Text: %2BOK%0A`, `Socket-Mode: async`, `Control: full`; values
//!   percent-encoded like `switch_url_encode` (see [`wire`]);
//! * reply texts: `+OK Events Enabled`, `-ERR aready enabled.`, `+OK will linger`, `+OK will
//!   linger N seconds`, `+OK` (resume, sendmsg), `+OK bye`, getvar's raw value or `-ERR command
//!   not found` (also for `noop`, `auth` and unknown commands), `api` as `api/response` with
//!   `-ERR <cmd> Command not found!\n` for unknown APIs, `+OK event listener enabled <fmt>`,
//!   the bgapi reply with its extra `Job-UUID` header;
//! * events only after `myevents` (plain, or JSON after `myevents json`), framed with an outer
//!   Content-Length and Content-Type; EXECUTE/EXECUTE_COMPLETE with all channel variables and
//!   `Application`, `Application-Data` (when non-empty), `Application-Response` (COMPLETE),
//!   `Application-UUID` (the sendmsg's `event-uuid`, else random), `Application-UUID-Name`;
//!   DTMF and CHANNEL_STATE without variables; `Hangup-Cause` twice in HANGUP_COMPLETE;
//! * the variable order: setting a variable moves it to the end, as FreeSWITCH stores them, so
//!   `current_application`, `current_loop`, `endpoint_disposition`... move like in the traces;
//! * `+OK` before the CHANNEL_EXECUTE it causes; queued commands start after the park-loop delay
//!   ([`CallScript::app_start_delay`]) one at a time; a running app without `event-lock` lets
//!   the next queued command run nested inside it (the outer app pauses);
//! * the answer sequence (SIP: EXECUTE, PROGRESS_MEDIA, ANSWER, EXECUTE_COMPLETE; loopback:
//!   EXECUTE, ANSWER, EXECUTE_COMPLETE), media apps pre-answering an unanswered channel;
//! * an unknown app: `+OK`, no EXECUTE events, `app_uuid` left set, hangup
//!   DESTINATION_OUT_OF_ORDER (conn02); `call-command: hangup` hangs up with no EXECUTE events;
//! * the closing sequence: CHANNEL_HANGUP, the running apps' EXECUTE_COMPLETE (playback:
//!   `PLAYBACK ERROR`), CHANNEL_UNPARK, EXECUTE_COMPLETE of `socket` (its response is the last
//!   app's), CHANNEL_STATE CS_HANGUP, CHANNEL_STATE CS_REPORTING, CHANNEL_HANGUP_COMPLETE with
//!   the CDR variables, then the linger notice (`Content-Disposition: linger`, `Linger-Time`)
//!   or, without linger, the disconnect notice and close; `linger N` closes N + 0.5 s after the
//!   notice, bare `linger` waits for the controller; `exit` answers `+OK bye`, sends the
//!   disconnect notice (67-byte body) and closes;
//! * after hangup: sendmsg still gets `+OK` and nothing runs; `api` still works;
//! * a playback stopped by `uuid_break` answers `FILE PLAYED` (conn07); DTMF events carry
//!   `DTMF-Digit`, `DTMF-Duration` (2000) and `DTMF-Source` (RTP for SIP, UNKNOWN for loopback,
//!   as captured);
//! * SIP caller BYE: `sip_term_status`, `proto_specific_hangup_cause`, `sip_term_cause` before
//!   CHANNEL_HANGUP, `sip_hangup_disposition=recv_bye` before the app's completion (conn09);
//!   `send_bye` when the switch hangs up (conn08).
//!
//! Modelled from FreeSWITCH's source (not in the traces):
//! * `getvar` replies are cut at 511 bytes (the listener's 512-byte reply buffer);
//! * playback terminators: `playback_terminators` (default `*`, `none`, `any`) end a playback
//!   with `FILE PLAYED` and set `playback_terminator_used`;
//! * `read` / `play_and_get_digits`: the prompt is interrupted by the first digit; min/max,
//!   first-digit timeout, inter-digit timeout, terminators, tries, the validation regex,
//!   `<var>_invalid`, `read_result` (success / timeout / failure), `read_terminator_used`,
//!   `play_and_get_digits`' transfer on failure;
//! * digits pressed while no app collects them are dropped by the park loop (only the DTMF
//!   event reaches the controller);
//! * a failed bridge sets `originate_disposition`, `originate_failed_cause`, `DIALSTATUS`, and
//!   hangs the A-leg up with the cause unless `switch_channel_handle_cause` says continue:
//!   `continue_on_fail` true or listing the cause (name or number), `failure_causes` not
//!   listing it, or — only when neither variable is set — NO_ANSWER / NO_USER_RESPONSE /
//!   ORIGINATOR_CANCEL. An answered bridge fires CHANNEL_BRIDGE / CHANNEL_UNBRIDGE and sets
//!   `bridge_hangup_cause`, `last_bridge_hangup_cause`, `last_bridge_role`;
//!   `hangup_after_bridge=true` hangs up after it;
//! * `call-command: hangup` is a queued private event: it waits behind an app running with
//!   `event-lock` (like every queued command); `api uuid_kill` and `uuid_break` act at once;
//! * `transfer` / `uuid_transfer`: the running apps return, CHANNEL_UNPARK and the `socket`
//!   EXECUTE_COMPLETE follow, later sendmsgs do nothing, and the transferred call hangs up
//!   [`CallScript::transfer_hangup_after`] later (events still flow until then);
//! * `loops: N` repeats an app, stopping early after an iteration under 0.5 s; `event-lock-pri`
//!   queues at the front; `${var}` in app data is expanded;
//! * the controller closing mid-call: the fake records it (and whether `resume` was sent:
//!   [`Transcript::handed_back_to_dialplan`]) and stops; the real switch lets the running app
//!   finish and continues the dialplan, which nobody observes on this socket;
//! * the 25 s deadline for the first command.
//!
//! # Deliberate differences from real FreeSWITCH
//!
//! * **Timing.** Events go out as soon as they happen; the real listener's up-to-20 ms flush
//!   latency is not modelled, and the park-loop delay is a fixed, configurable
//!   [`CallScript::app_start_delay`] (default 0; [`CallScript::realistic`] uses 20 ms). Media
//!   length comes from the script ([`CallScript::media_time`], per-file rules,
//!   `silence_stream://N`), not from real files. The closing sequence is sent in one burst.
//! * **Identity values.** Core-UUID, hostname (`vm`), IPs, SIP network addresses, SDP bodies,
//!   codec (PCMU / L16) and SIP dialog details are fixed copies of the trace values;
//!   `Event-Date-Local` is rendered in UTC; `Event-Sequence` is a process-wide counter.
//!   Variables that real mod_sofia updates later in a dialog (`sip_to_tag`, `sip_cseq`,
//!   `sip_full_via` after the ACK) are not updated.
//! * **Size of the connect reply.** The SIP profile copies conn08: ~80 variables, ~155 headers,
//!   6.4 KB (the issue's "~150 variables, ~4 KB" is between the loopback shape, 17 variables /
//!   3.6 KB, and this one); pass [`ChannelProfile::extra_vars`] for more.
//! * **Bridge.** There is no B-leg: outcomes are scripted per dial string. CHANNEL_BRIDGE /
//!   UNBRIDGE carry only `Bridge-A/B-Unique-ID`, `Other-Type`, `Other-Leg-Unique-ID` (no
//!   `Other-Leg-*` profile). A successful originate sets `originate_disposition` and
//!   `DIALSTATUS` to `SUCCESS` (from the source, unverified). A failed bridge answers
//!   `Application-Response: _none_` like stock mod_dptools (only mod_kazoo's bridge puts the
//!   cause there): **read the cause from `originate_disposition` / `DIALSTATUS` /
//!   `originate_failed_cause`, not from Application-Response.**
//! * **Apps.** Apps without a model (e.g. `log`, `info`, `record_session`, `intercept`) complete
//!   at once with `_none_`; `park`, `echo`, `valet_park` block until hangup, break or transfer;
//!   `conference`, `record` block for [`CallScript::app_durations`] (else `media_time`).
//!   `xferext`, `nomedia`, `unicast` call-commands, `divert_events` semantics, XML events,
//!   `sendevent` delivery, `log` output and `filter` on headers other than what the event
//!   carries are accepted and not modelled (noted in [`Transcript::errors`]). `sched_hangup`'s
//!   reply text is unverified.
//! * **Without linger**, FreeSWITCH may lose queued events at close (A8); the captures (conn04)
//!   show HANGUP_COMPLETE delivered, and so does the fake.
//! * **Backpressure.** No 100k-event queue and no "500 lost events" kill; the fake writes and
//!   waits for the socket. A controller that does not read stalls the fake.
//! * **Single channel.** `myevents` and `event ... ALL` deliver this channel's events only;
//!   `api` knows this channel's uuid only (`-ERR No such channel!` otherwise).
//!
//! # Why MockConnection is only the base of [`ManualSwitch`]
//!
//! freeswitch-esl-tokio's `MockConnection` is the base of the step-by-step test API. The
//! scripted fake behind [`dial`] reads and writes the socket itself, because
//! `MockConnection::read_command` (1) reads line by line until a blank line, so it cannot read
//! a `Content-Length` body — and `EslClient::sendmsg` sends bodies without a trailing newline,
//! which would deadlock it; (2) is not cancel-safe, so it cannot wait in `select!` against
//! scripted timers (DTMF, hangup, media ends) without losing bytes; (3) returns `String`, so a
//! non-UTF-8 byte is an error instead of a recorded protocol violation; and (4) owns the stream
//! unsplit, so reading and writing cannot proceed concurrently. The scripted fake instead
//! parses commands exactly as `read_packet` does ([`command`]) from a cancel-safe `read_buf`
//! loop and writes frames in FreeSWITCH's format ([`wire`]) — the same encoder
//! [`ManualSwitch`] uses through `MockConnection::send_raw` (the mock's own `reply_ok` /
//! `send_event_plain` differ from FreeSWITCH: literal `+OK` instead of `%2BOK%0A`, wider
//! percent-encoding, no `Content-Disposition` on notices). One task per call, event blocks
//! cached per call: fit for the load generator.

pub mod apps;
pub mod channel;
pub mod command;
pub mod manual;
pub mod script;
pub mod session;
pub mod transcript;
pub mod wire;

pub use channel::{Channel, ChannelKind, ChannelProfile, Format};
pub use manual::ManualSwitch;
pub use script::{
    BridgeOutcome, BridgeRule, CallScript, DtmfAt, Fault, ScriptError, ScriptedDtmf, Side,
};
pub use session::run_call;
pub use transcript::{
    CallEnd, ExecutedApp, Hangup, HangupBy, Received, SentFrame, Transcript, quantile,
};

use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Plays one call against the controller listening at `controller`: connects like the `socket`
/// app (TCP_NODELAY), runs the script until either side closes the socket (or a safety limit
/// ends it), and returns the transcript. Fails only if the TCP connection cannot be made.
pub async fn dial(controller: SocketAddr, script: CallScript) -> std::io::Result<Transcript> {
    let stream = TcpStream::connect(controller).await?;
    stream.set_nodelay(true)?;
    Ok(run_call(stream, script).await)
}

//! Error types for FreeSWITCH ESL operations.
//!
//! All fallible operations in this crate return [`EslResult<T>`].  Errors are
//! classified into two axes for caller convenience:
//!
//! - **Connection errors** ([`EslError::is_connection_error`]) -- the TCP session
//!   is dead and the caller should reconnect.
//! - **Recoverable errors** ([`EslError::is_recoverable`]) -- the command failed
//!   but the connection is still usable (e.g., timeout, command rejected).

use crate::commands::OriginateError;
use crate::constants::{REPLY_PREFIX_ERR, REPLY_PREFIX_USAGE};
use freeswitch_types::variables::ParseLoopbackLegError;
use freeswitch_types::{
    ParseAnswerStateError, ParseCallDirectionError, ParseCallStateError, ParseChannelStateError,
    ParseGatewayRegStateError, ParseHangupCauseError, ParseHeaderError, ParsePriorityError,
    ParseTimetableError,
};
use thiserror::Error;

/// Result type alias for ESL operations
pub type EslResult<T> = Result<T, EslError>;

/// Payload of every `mod_event_socket` denial (`api`, `bgapi`, `log`, `event`);
/// the reply carries this and nothing more.
const PERMISSION_DENIED_PAYLOAD: &str = "permission denied";

/// Comprehensive error types for ESL operations
#[derive(Error, Debug)]
#[non_exhaustive]
pub enum EslError {
    /// IO error from underlying TCP operations
    #[error("IO error: {0}")]
    Io(#[from] std::io::Error),

    /// Connection is not established or lost
    #[error("Not connected to FreeSWITCH")]
    NotConnected,

    /// Authentication failed
    #[error("Authentication failed: {reason}")]
    AuthenticationFailed {
        /// Description from FreeSWITCH (e.g. "invalid" or "user not found").
        reason: String,
    },

    /// Protocol error - invalid message format
    #[error("Protocol error: {message}")]
    ProtocolError {
        /// What went wrong in the protocol exchange.
        message: String,
    },

    /// Command returned `-ERR` with an error message from FreeSWITCH
    #[error("Command failed: {reply_text}")]
    CommandFailed {
        /// The full `Reply-Text` value (e.g. `-ERR invalid command`).
        reply_text: String,
    },

    /// Reply-Text did not match the expected `+OK`/`-ERR` protocol format.
    ///
    /// Most ESL commands return `+OK ...` on success and `-ERR ...` on failure.
    /// A reply that matches neither indicates a protocol-level anomaly or a
    /// command with non-standard reply format (e.g. `getvar`).
    #[error("Unexpected reply: {reply_text}")]
    UnexpectedReply {
        /// The full `Reply-Text` value that didn't match `+OK` or `-ERR`.
        reply_text: String,
    },

    /// Timeout waiting for a command reply.
    ///
    /// The connection remains usable. The library increments an internal
    /// stale-reply counter so that the server's late reply — when it
    /// eventually arrives — is silently discarded rather than routed to
    /// the next command's waiter, preserving reply correlation.
    #[error("Operation timed out after {timeout_ms}ms")]
    Timeout {
        /// Elapsed time in milliseconds before the operation was abandoned.
        timeout_ms: u64,
    },

    /// Invalid event format
    #[error("Invalid event format: {format}")]
    InvalidEventFormat {
        /// The unrecognized format string.
        format: String,
    },

    /// JSON parsing error
    #[error("JSON parsing error: {0}")]
    JsonError(String),

    /// XML parsing error
    #[error("XML parsing error: {0}")]
    XmlError(String),

    /// UTF-8 conversion error
    #[error("UTF-8 conversion error: {0}")]
    Utf8Error(#[from] std::str::Utf8Error),

    /// UTF-8 decoding failed for a specific header value during parsing.
    ///
    /// Preserves the source `Utf8Error` so callers walking `e.source()` see
    /// the exact decoder error (byte offset, invalid sequence) instead of a
    /// stringified message.
    #[error("invalid UTF-8 in {context} '{key}'")]
    InvalidUtf8InHeader {
        /// Where the bad byte appeared (e.g. `"header"`, `"event body"`).
        context: &'static str,
        /// Header key whose value failed to decode.
        key: String,
        /// Underlying decoder error.
        #[source]
        source: std::str::Utf8Error,
    },

    /// Buffer overflow - message too large
    #[error("Buffer overflow: message size {size} exceeds limit {limit}")]
    BufferOverflow {
        /// Actual message size in bytes.
        size: usize,
        /// Maximum allowed size in bytes.
        limit: usize,
    },

    /// Invalid header format
    #[error("Invalid header format: {header}")]
    InvalidHeader {
        /// The malformed header line.
        header: String,
    },

    /// Missing required header
    #[error("Missing required header: {header}")]
    MissingHeader {
        /// Name of the header that was expected.
        header: String,
    },

    /// Connection rejected by FreeSWITCH ACL (text/rude-rejection)
    #[error("Access denied: {reason}")]
    AccessDenied {
        /// Message from the rejection notice.
        reason: String,
    },

    /// Connection closed by remote
    #[error("Connection closed by FreeSWITCH")]
    ConnectionClosed,

    /// Heartbeat/liveness timeout expired
    #[error("Heartbeat expired after {interval_ms}ms without traffic")]
    HeartbeatExpired {
        /// Configured liveness interval in milliseconds.
        interval_ms: u64,
    },

    /// Invalid UUID format
    #[error("Invalid UUID format: {uuid}")]
    InvalidUuid {
        /// The string that failed UUID validation.
        uuid: String,
    },

    /// Event queue full
    #[error("Event queue is full - dropping events")]
    QueueFull,

    /// Generic error with custom message
    #[error("ESL error: {message}")]
    Generic {
        /// Free-form error description.
        message: String,
    },

    /// Originate command builder error
    #[error("Originate error: {0}")]
    Originate(#[from] OriginateError),

    /// Re-exec teardown failed
    #[cfg(unix)]
    #[error("Re-exec teardown failed: {reason}")]
    ReexecFailed {
        /// What went wrong during teardown.
        reason: String,
    },

    /// A typed header accessor rejected a value that was present on the wire.
    #[error("header parse error: {0}")]
    HeaderParse(#[from] ParseHeaderError),
}

/// Route each typed parser's error into [`EslError::HeaderParse`], so a reader
/// loop can `?` a header accessor without naming the parser that failed.
///
/// Only for an error type this workspace owns. `sip_status_code` hands back a
/// bare `ParseIntError`, and a `From` for that would swallow every unrelated
/// integer parse in the caller and label it a header fault; that one accessor
/// is converted by name.
macro_rules! esl_error_from_header_parse {
    ($($(#[$attr:meta])* $Error:ty),+ $(,)?) => {
        $(
            $(#[$attr])*
            impl From<$Error> for EslError {
                fn from(e: $Error) -> Self {
                    Self::HeaderParse(ParseHeaderError::from(e))
                }
            }
        )+
    };
}

esl_error_from_header_parse! {
    ParseChannelStateError,
    ParseCallStateError,
    ParseAnswerStateError,
    ParseCallDirectionError,
    ParseHangupCauseError,
    ParseGatewayRegStateError,
    ParseLoopbackLegError,
    ParsePriorityError,
    ParseTimetableError,
}

impl From<serde_json::Error> for EslError {
    fn from(e: serde_json::Error) -> Self {
        Self::JsonError(e.to_string())
    }
}

/// The failure text of an [`EslError::CommandFailed`], split by the prefix
/// FreeSWITCH wrote in front of it.
///
/// A sum rather than a `(kind, payload)` pair because the payload only means
/// something once the prefix is known: a `-USAGE` synopsis handed to
/// [`HangupCause::from_str`](freeswitch_types::HangupCause) is not a hangup
/// cause, and a product type lets a caller read one without the other.
///
/// A prefix counts as one only when no word character follows it: mod_commands
/// writes a bare `-ERROR`, which is [`Unprefixed`](Self::Unprefixed) rather than
/// an `-ERR` carrying `OR`. This is a finer question than the one
/// [`parse_api_body`](crate::parse_api_body) answers — whether the body is a
/// failure at all, which `-ERROR` is — so the two classify at different
/// granularities on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandFailure<'a> {
    /// `-ERR <text>`, with the text after an optional `:` and one space.
    /// Empty for a bare `-ERR`.
    Err(&'a str),
    /// `-USAGE: <text>`. Only one space is consumed after the colon: the rest
    /// of a synopsis's indentation is wire content.
    Usage(&'a str),
    /// Neither prefix was found, so the whole reply text rides here rather
    /// than posing as a peeled payload.
    Unprefixed(&'a str),
}

impl<'a> CommandFailure<'a> {
    /// The text behind the prefix, or `None` when there was no prefix to peel.
    pub fn payload(self) -> Option<&'a str> {
        match self {
            CommandFailure::Err(text) | CommandFailure::Usage(text) => Some(text),
            CommandFailure::Unprefixed(_) => None,
        }
    }
}

/// Peel a reply prefix, or `None` when a word character follows it and the
/// match is therefore a longer word the switch wrote (`-ERROR`).
fn peel_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    Some(peel_separator(rest))
}

/// Drop the separator FreeSWITCH writes between a reply prefix and its text.
fn peel_separator(rest: &str) -> &str {
    let rest = rest
        .strip_prefix(':')
        .unwrap_or(rest);
    rest.strip_prefix(' ')
        .unwrap_or(rest)
}

impl EslError {
    /// Construct a generic error with a custom message.
    pub fn generic(message: impl Into<String>) -> Self {
        Self::Generic {
            message: message.into(),
        }
    }

    /// Construct a protocol error with a description.
    pub fn protocol_error(message: impl Into<String>) -> Self {
        Self::ProtocolError {
            message: message.into(),
        }
    }

    /// Construct an authentication failure with a reason.
    pub fn auth_failed(reason: impl Into<String>) -> Self {
        Self::AuthenticationFailed {
            reason: reason.into(),
        }
    }

    /// `true` if the connection is still usable and the caller can retry.
    ///
    /// Recoverable: `Timeout`, `CommandFailed`, `UnexpectedReply`, `QueueFull`.
    /// Non-recoverable errors (I/O, auth, disconnect) mean the connection is dead
    /// and the caller should reconnect.
    // qual:allow(dry, duplicate) reason: "exhaustive per-variant classification, no catch-all by design"
    pub fn is_recoverable(&self) -> bool {
        match self {
            EslError::Io(_) => false,
            EslError::NotConnected => false,
            EslError::ConnectionClosed => false,
            EslError::AuthenticationFailed { .. } => false,
            EslError::AccessDenied { .. } => false,
            EslError::HeartbeatExpired { .. } => false,
            EslError::Timeout { .. } => true,
            EslError::CommandFailed { .. } => true,
            EslError::UnexpectedReply { .. } => true,
            EslError::QueueFull => true,
            // Parse/protocol failures: correctness over recovery — never
            // hand back partial data, never paper over wire-format breaks.
            EslError::ProtocolError { .. } => false,
            EslError::InvalidEventFormat { .. } => false,
            EslError::JsonError(_) => false,
            EslError::XmlError(_) => false,
            EslError::Utf8Error(_) => false,
            EslError::InvalidUtf8InHeader { .. } => false,
            EslError::InvalidHeader { .. } => false,
            EslError::MissingHeader { .. } => false,
            EslError::InvalidUuid { .. } => false,
            EslError::HeaderParse(_) => false,
            // Stream resync impossible after BufferOverflow.
            EslError::BufferOverflow { .. } => false,
            // Per-call: don't retry the same command/originate as-is.
            EslError::Originate(_) => false,
            EslError::Generic { .. } => false,
            #[cfg(unix)]
            EslError::ReexecFailed { .. } => false,
        }
    }

    /// `true` if the TCP session is dead and the caller should reconnect.
    ///
    /// Matches: `Io`, `NotConnected`, `ConnectionClosed`, `HeartbeatExpired`,
    /// `ProtocolError`.
    ///
    /// Returns `true` for errors that indicate the TCP session is no longer
    /// usable, *during* an established connection. Authentication failures
    /// are returned synchronously by [`EslClient::connect`] and never reach
    /// this classifier — callers retrying a connect() loop should instead
    /// check [`Self::is_recoverable`] which returns `false` for
    /// `AuthenticationFailed` to break the loop.
    ///
    /// [`EslClient::connect`]: crate::EslClient::connect
    // qual:allow(dry, duplicate) reason: "exhaustive per-variant classification, no catch-all by design"
    pub fn is_connection_error(&self) -> bool {
        match self {
            EslError::Io(_) => true,
            EslError::NotConnected => true,
            EslError::ConnectionClosed => true,
            EslError::AccessDenied { .. } => true,
            EslError::HeartbeatExpired { .. } => true,
            EslError::ProtocolError { .. } => true,
            // Stream resync impossible after BufferOverflow — the next
            // bytes have no recoverable framing.
            EslError::BufferOverflow { .. } => true,
            // Auth is reported synchronously by connect(); see the
            // method-level docs for the rationale.
            EslError::AuthenticationFailed { .. } => false,
            EslError::CommandFailed { .. } => false,
            EslError::UnexpectedReply { .. } => false,
            EslError::Timeout { .. } => false,
            EslError::QueueFull => false,
            // Parse failures don't necessarily imply the TCP is dead.
            EslError::InvalidEventFormat { .. } => false,
            EslError::JsonError(_) => false,
            EslError::XmlError(_) => false,
            EslError::Utf8Error(_) => false,
            EslError::InvalidUtf8InHeader { .. } => false,
            EslError::InvalidHeader { .. } => false,
            EslError::MissingHeader { .. } => false,
            EslError::InvalidUuid { .. } => false,
            EslError::HeaderParse(_) => false,
            EslError::Originate(_) => false,
            EslError::Generic { .. } => false,
            // Re-exec teardown attempt failed; the original socket is
            // still alive — caller can keep using it.
            #[cfg(unix)]
            EslError::ReexecFailed { .. } => false,
        }
    }

    /// `true` if a command was rejected for lack of permission
    /// (`-ERR permission denied`).
    ///
    /// FreeSWITCH returns this when a restricted ESL user (e.g.
    /// `esl-allowed-events` without `HEARTBEAT`, or an `esl-allowed-api`
    /// gate) issues a command it is not authorized for. The denial is
    /// recoverable: the connection stays usable, only the command failed.
    /// Lets the caller distinguish "you may not do this" from a generic
    /// command failure without matching `reply_text` by hand.
    ///
    /// Matched as a prefix, not a substring: the denial is `mod_event_socket`'s
    /// own whole reply, so a different failure that merely mentions the phrase
    /// is not one.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self.command_failure(), Some(CommandFailure::Err(payload))
            if payload
                .get(..PERMISSION_DENIED_PAYLOAD.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(PERMISSION_DENIED_PAYLOAD)))
    }

    /// Split the failure text of a [`CommandFailed`](Self::CommandFailed) by
    /// its wire prefix, so a caller can feed the payload to a typed parser
    /// (`-ERR USER_BUSY` to
    /// [`HangupCause`](freeswitch_types::HangupCause)) without stripping it
    /// by hand.
    ///
    /// `None` for every other variant, including
    /// [`UnexpectedReply`](Self::UnexpectedReply) — whose documented normal
    /// case is a `getvar` value, which is not a failure at all.
    pub fn command_failure(&self) -> Option<CommandFailure<'_>> {
        let EslError::CommandFailed { reply_text } = self else {
            return None;
        };
        let text = reply_text.trim_start();
        if let Some(payload) = peel_prefix(text, REPLY_PREFIX_ERR) {
            Some(CommandFailure::Err(payload))
        } else if let Some(payload) = peel_prefix(text, REPLY_PREFIX_USAGE) {
            Some(CommandFailure::Usage(payload))
        } else {
            Some(CommandFailure::Unprefixed(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeswitch_types::{HangupCause, ParseChannelStateError, ParseHeaderError};

    // A typed accessor's error must reach EslError through the union, so a
    // reader loop can `?` it without naming each parser's error type.
    #[test]
    fn header_parse_error_routes_through_the_union() {
        let err = EslError::from(ParseChannelStateError("CS_NONSENSE".into()));
        assert!(matches!(
            err,
            EslError::HeaderParse(ParseHeaderError::ChannelState(_))
        ));
        assert!(!err.is_recoverable());
        assert!(!err.is_connection_error());
    }

    // sip_status_code is the one accessor whose error this workspace does not
    // own, so it converts by name and still lands in the same variant.
    #[test]
    fn a_sip_status_code_fault_is_named_not_inferred() {
        let inner = "notanumber"
            .parse::<u16>()
            .expect_err("non-numeric must fail");
        let err = EslError::HeaderParse(ParseHeaderError::SipStatusCode(inner));
        assert!(err
            .to_string()
            .starts_with("header parse error:"));
        assert!(!err.is_recoverable());
    }

    #[test]
    fn access_denied_not_recoverable() {
        let err = EslError::AccessDenied {
            reason: "ACL".into(),
        };
        assert!(!err.is_recoverable());
    }

    #[test]
    fn queue_full_is_recoverable() {
        assert!(EslError::QueueFull.is_recoverable());
    }

    #[test]
    fn command_failed_is_recoverable() {
        let err = EslError::CommandFailed {
            reply_text: "-ERR no such command".into(),
        };
        assert!(err.is_recoverable());
    }

    #[test]
    fn unexpected_reply_is_recoverable() {
        let err = EslError::UnexpectedReply {
            reply_text: "garbage".into(),
        };
        assert!(err.is_recoverable());
    }

    #[test]
    fn permission_denied_detected() {
        for reply in [
            "-ERR permission denied",
            "-ERR Permission Denied",
            "-ERR PERMISSION DENIED",
        ] {
            let err = EslError::CommandFailed {
                reply_text: reply.into(),
            };
            assert!(err.is_permission_denied(), "should detect: {reply}");
            assert!(err.is_recoverable());
            assert!(!err.is_connection_error());
        }
    }

    #[test]
    fn other_command_failure_not_permission_denied() {
        let err = EslError::CommandFailed {
            reply_text: "-ERR no such command".into(),
        };
        assert!(!err.is_permission_denied());
    }

    // The ESL denial is its own reply, not a phrase inside someone else's
    // output. An api body that merely mentions it must not be classified as
    // a permanent configuration fault.
    #[test]
    fn phrase_inside_another_failure_is_not_permission_denied() {
        for reply in [
            "-ERR error/permission denied while opening /var/lib/freeswitch/x.wav",
            "-USAGE: sched_api [+@]<time> <group_name> <command string> (permission denied)",
        ] {
            let err = EslError::CommandFailed {
                reply_text: reply.into(),
            };
            assert!(!err.is_permission_denied(), "should not detect: {reply}");
        }
    }

    #[test]
    fn permission_denied_tolerates_trailing_wire_whitespace() {
        let err = EslError::CommandFailed {
            reply_text: "-ERR permission denied\n".into(),
        };
        assert!(err.is_permission_denied());
    }

    #[test]
    fn non_command_failure_not_permission_denied() {
        assert!(!EslError::QueueFull.is_permission_denied());
        assert!(!EslError::AccessDenied {
            reason: "ACL".into()
        }
        .is_permission_denied());
    }

    fn failed(reply_text: &str) -> EslError {
        EslError::CommandFailed {
            reply_text: reply_text.into(),
        }
    }

    // The consumer case: a hangup cause arrives as an -ERR payload and has to
    // reach HangupCause::from_str without the caller peeling the prefix.
    #[test]
    fn err_payload_round_trips_through_hangup_cause() {
        let err = failed("-ERR USER_BUSY");
        let failure = err
            .command_failure()
            .expect("CommandFailed must classify");
        assert_eq!(failure, CommandFailure::Err("USER_BUSY"));
        assert_eq!(
            failure
                .payload()
                .expect("Err carries a payload")
                .parse::<HangupCause>(),
            Ok(HangupCause::UserBusy)
        );
    }

    #[test]
    fn usage_reply_classifies_as_usage() {
        let err = failed("-USAGE: originate <call_url> <exten>");
        assert_eq!(
            err.command_failure(),
            Some(CommandFailure::Usage("originate <call_url> <exten>"))
        );
    }

    // A usage synopsis's leading indentation is wire content: exactly one
    // space is consumed after the optional colon, never a trim.
    #[test]
    fn usage_payload_keeps_synopsis_indentation() {
        let err = failed("-USAGE:   sched_api [+@]<time>");
        assert_eq!(
            err.command_failure(),
            Some(CommandFailure::Usage("  sched_api [+@]<time>"))
        );
    }

    // mod_commands writes a bare `-ERROR` (uuid_answer with no argument, and
    // the three neighbouring uuid_* APIs). `-ERR` is a token, not a string
    // prefix, so it must not match inside a longer word.
    #[test]
    fn bare_error_reply_is_not_an_err_payload() {
        assert_eq!(
            failed("-ERROR").command_failure(),
            Some(CommandFailure::Unprefixed("-ERROR"))
        );
    }

    #[test]
    fn a_longer_word_behind_either_prefix_stays_unprefixed() {
        assert_eq!(
            failed("-ERRORS: 3").command_failure(),
            Some(CommandFailure::Unprefixed("-ERRORS: 3"))
        );
        assert_eq!(
            failed("-USAGEX y").command_failure(),
            Some(CommandFailure::Unprefixed("-USAGEX y"))
        );
    }

    // A bgapi BACKGROUND_JOB body reaches the caller without parse_api_body's
    // trailing-newline strip, so the terminator rides in the payload.
    #[test]
    fn a_line_terminator_behind_a_bare_prefix_still_peels() {
        assert_eq!(
            failed("-ERR\n").command_failure(),
            Some(CommandFailure::Err("\n"))
        );
        assert_eq!(
            failed("-ERR\r\n").command_failure(),
            Some(CommandFailure::Err("\r\n"))
        );
    }

    // mod_avmd writes `-ERR, <message>`. The comma is not a separator this
    // crate peels, so it stays on the payload.
    #[test]
    fn a_comma_separated_failure_keeps_its_comma() {
        assert_eq!(
            failed("-ERR, bad command!").command_failure(),
            Some(CommandFailure::Err(", bad command!"))
        );
    }

    #[test]
    fn bare_err_yields_empty_payload() {
        assert_eq!(
            failed("-ERR").command_failure(),
            Some(CommandFailure::Err(""))
        );
    }

    // Neither prefix found: the whole text rides along under a discriminant
    // that says so, rather than masquerading as a peeled -ERR payload.
    #[test]
    fn unprefixed_reply_carries_whole_text_and_no_payload() {
        let err = failed("sip_from_user");
        let failure = err
            .command_failure()
            .expect("CommandFailed must classify");
        assert_eq!(failure, CommandFailure::Unprefixed("sip_from_user"));
        assert_eq!(failure.payload(), None);
    }

    #[test]
    fn leading_wire_whitespace_is_tolerated() {
        assert_eq!(
            failed("  -ERR USER_BUSY").command_failure(),
            Some(CommandFailure::Err("USER_BUSY"))
        );
    }

    #[test]
    fn non_command_failed_variants_do_not_classify() {
        assert_eq!(EslError::QueueFull.command_failure(), None);
        assert_eq!(EslError::Timeout { timeout_ms: 10 }.command_failure(), None);
        assert_eq!(
            EslError::UnexpectedReply {
                reply_text: "-ERR nope".into()
            }
            .command_failure(),
            None
        );
    }

    // A -USAGE synopsis merely quoting the phrase is not the denial reply,
    // and the Err-only pattern is what excludes it.
    #[test]
    fn usage_mentioning_the_phrase_is_not_permission_denied() {
        let err = failed("-USAGE: sched_api [+@]<time> <group_name> <command> (permission denied)");
        assert!(matches!(
            err.command_failure(),
            Some(CommandFailure::Usage(_))
        ));
        assert!(!err.is_permission_denied());
    }

    #[test]
    fn classification_of_transport_and_setup_errors() {
        use std::io::ErrorKind;
        let io = |kind| EslError::from(std::io::Error::new(kind, "test"));
        let cases: &[(EslError, bool, bool)] = &[
            (io(ErrorKind::ConnectionRefused), true, false),
            (io(ErrorKind::ConnectionReset), true, false),
            (io(ErrorKind::ConnectionAborted), true, false),
            (io(ErrorKind::BrokenPipe), true, false),
            (io(ErrorKind::UnexpectedEof), true, false),
            (EslError::ConnectionClosed, true, false),
            (EslError::NotConnected, true, false),
            (
                EslError::HeartbeatExpired { interval_ms: 60000 },
                true,
                false,
            ),
            (EslError::Timeout { timeout_ms: 5000 }, false, true),
            (EslError::protocol_error("bad framing"), true, false),
            (EslError::auth_failed("bad password"), false, false),
            (
                EslError::from(ParseChannelStateError("CS_NONSENSE".into())),
                false,
                false,
            ),
        ];
        for (err, connection, recoverable) in cases {
            assert_eq!(err.is_connection_error(), *connection, "{err:?}");
            assert_eq!(err.is_recoverable(), *recoverable, "{err:?}");
        }
    }
}

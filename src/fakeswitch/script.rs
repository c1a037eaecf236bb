//! What one fake call does: who calls, what the caller presses and when, when they hang up, how
//! long media takes, which files are missing, what bridges do, and which faults to inject.
//!
//! Times are offsets from the moment the fake answered `connect` (the call start as the
//! controller sees it), unless anchored to an app start ([`DtmfAt::AppStart`]).

use super::channel::{ChannelKind, ChannelProfile};
use std::fmt;
use std::time::Duration;

/// A script could not be parsed (`parse_digits`, `parse_duration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError(pub String);

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad call script: {}", self.0)
    }
}

impl std::error::Error for ScriptError {}

/// When a scripted digit is pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtmfAt {
    /// This long after the call start (`connect` answered).
    CallTime(Duration),
    /// This long after the `nth` (1-based) start of app `app` (its CHANNEL_EXECUTE). Robust
    /// against a slow controller: "press 1 300 ms into the second playback".
    AppStart {
        /// App name (`playback`, `read`, `play_and_get_digits`, ...).
        app: String,
        /// Which start of that app, counting from 1.
        nth: usize,
        /// Delay after that start.
        offset: Duration,
    },
}

/// One digit the scripted caller presses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedDtmf {
    /// `0-9`, `*`, `#`, `A-D`.
    pub digit: char,
    /// When.
    pub at: DtmfAt,
}

/// Which leg ends an answered bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The far end (B-leg) hangs up: the bridge app completes and the A-leg stays up
    /// (unless `hangup_after_bridge=true`).
    Callee,
    /// The caller (A-leg) hangs up: CHANNEL_HANGUP, the bridge completes, closing sequence.
    Caller,
}

/// What a `bridge` to a matching dial string does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeOutcome {
    /// The far end answers after `ring`, the legs talk for `talk`, then `hangup_by` hangs up
    /// with `cause`.
    Answered {
        /// Ringing time before the answer.
        ring: Duration,
        /// Talk time.
        talk: Duration,
        /// Who ends it.
        hangup_by: Side,
        /// Hangup cause of the side that ends it (`bridge_hangup_cause` when the callee ends).
        cause: String,
    },
    /// The originate fails after `ring` with `cause` (USER_BUSY, NO_ANSWER, ...).
    Failed {
        /// Time until the failure.
        ring: Duration,
        /// FreeSWITCH cause name.
        cause: String,
    },
}

impl BridgeOutcome {
    /// Answered at once, callee hangs up NORMAL_CLEARING after `talk`.
    pub fn answered(talk: Duration) -> Self {
        BridgeOutcome::Answered {
            ring: Duration::ZERO,
            talk,
            hangup_by: Side::Callee,
            cause: "NORMAL_CLEARING".into(),
        }
    }

    /// Fails at once with `cause`.
    pub fn failed(cause: &str) -> Self {
        BridgeOutcome::Failed {
            ring: Duration::ZERO,
            cause: cause.to_string(),
        }
    }

    /// Same outcome after `ring` of ringing.
    pub fn after(mut self, delay: Duration) -> Self {
        match &mut self {
            BridgeOutcome::Answered { ring, .. } | BridgeOutcome::Failed { ring, .. } => {
                *ring = delay
            }
        }
        self
    }

    /// For an answered bridge: the caller ends the call (instead of the callee).
    pub fn caller_hangs_up(mut self) -> Self {
        if let BridgeOutcome::Answered { hangup_by, .. } = &mut self {
            *hangup_by = Side::Caller;
        }
        self
    }
}

/// A bridge rule: dial strings containing `pattern` (or every one, for `*`) get `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRule {
    /// Substring of the dial string; `*` matches everything.
    pub pattern: String,
    /// What happens.
    pub outcome: BridgeOutcome,
}

/// Misbehaviour to inject, for robustness tests of the controller (issue 7). Commands are
/// counted from 1 in arrival order (`connect` is command 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Close the TCP connection abruptly when command `n` arrives (no reply).
    DropOnCommand(usize),
    /// Close the TCP connection abruptly this long after the call start.
    DropAfter(Duration),
    /// Never reply to command `n` and ignore it (a wedged switch); the connection stays up.
    NeverReply(usize),
    /// Run app `app` normally but never send its CHANNEL_EXECUTE_COMPLETE (not even at hangup).
    NoExecuteComplete {
        /// App name.
        app: String,
    },
    /// Write these raw bytes right after the reply to command `n`.
    GarbageAfterCommand {
        /// Command number.
        n: usize,
        /// Bytes to write (need not be UTF-8).
        bytes: Vec<u8>,
    },
    /// Reply to command `n` with half of a frame whose Content-Length promises more, then close.
    TruncatedFrameOnCommand(usize),
    /// After replying to command `n`, send an event whose one header line is `len` bytes long.
    HugeHeaderAfterCommand {
        /// Command number.
        n: usize,
        /// Length of the header line (1 MiB in issue 7).
        len: usize,
    },
    /// After replying to command `n`, send `count` CHANNEL_STATE events back to back.
    FloodEvents {
        /// Command number.
        after_command: usize,
        /// Number of events (100k in issue 7).
        count: usize,
    },
    /// Write everything in chunks of `chunk` bytes, `delay` apart (slow network).
    ChunkedWrites {
        /// Chunk size in bytes (at least 1).
        chunk: usize,
        /// Pause between chunks.
        delay: Duration,
    },
    /// Wait this long before every write (a slow or overloaded switch).
    WriteDelay(Duration),
}

/// Everything one fake call does. Build with [`CallScript::new`] and the builder methods.
#[derive(Debug, Clone)]
pub struct CallScript {
    /// The caller and channel shape.
    pub channel: ChannelProfile,
    /// Digits the caller presses.
    pub dtmf: Vec<ScriptedDtmf>,
    /// `DTMF-Duration` reported (2000 in the traces).
    pub dtmf_duration_ms: u32,
    /// The caller hangs up this long after the call start.
    pub hangup_after: Option<Duration>,
    /// Cause of the caller's hangup (NORMAL_CLEARING).
    pub caller_hangup_cause: String,
    /// Length of a playback/speak/say/phrase/prompt unless overridden per file.
    pub media_time: Duration,
    /// Per-file lengths: the first rule whose pattern is a substring of the path wins.
    pub file_durations: Vec<(String, Duration)>,
    /// Paths (substring match) that do not exist: playback answers FILE NOT FOUND at once.
    pub missing_files: Vec<String>,
    /// The park loop's delay before a queued command starts (~20 ms on a real switch).
    pub app_start_delay: Duration,
    /// Per-app durations for blocking apps (`conference`, `record`, `gentones`...) and overrides.
    pub app_durations: Vec<(String, Duration)>,
    /// Bridge rules, first match wins.
    pub bridge: Vec<BridgeRule>,
    /// Outcome of a bridge no rule matches.
    pub default_bridge: BridgeOutcome,
    /// App names the switch knows; any other name hangs the call up DESTINATION_OUT_OF_ORDER.
    pub known_apps: Vec<String>,
    /// After `transfer`, the transferred call hangs up this long later.
    pub transfer_hangup_after: Duration,
    /// Fire CHANNEL_PARK right after `myevents` (the traces show it in 2 of 9 calls; usually it
    /// fires before `myevents` and is lost).
    pub park_event: bool,
    /// Faults to inject.
    pub faults: Vec<Fault>,
    /// Keep the bytes of every frame sent in the transcript (tests); off for load generation.
    pub record_frames: bool,
    /// A real switch gives up when no command arrives for this long after it dialled (25 s).
    pub first_command_timeout: Duration,
    /// Safety net: end the fake call after this long, whatever happens.
    pub max_duration: Duration,
}

impl CallScript {
    /// A SIP call to `destination` with fast defaults for tests: no park-loop delay, 100 ms
    /// media, bridges answer and last 100 ms, frames recorded, 5 minute safety limit.
    pub fn new(destination: &str) -> Self {
        CallScript {
            channel: ChannelProfile::sip(destination),
            dtmf: Vec::new(),
            dtmf_duration_ms: 2000,
            hangup_after: None,
            caller_hangup_cause: "NORMAL_CLEARING".into(),
            media_time: Duration::from_millis(100),
            file_durations: Vec::new(),
            missing_files: Vec::new(),
            app_start_delay: Duration::ZERO,
            app_durations: Vec::new(),
            bridge: Vec::new(),
            default_bridge: BridgeOutcome::answered(Duration::from_millis(100)),
            known_apps: super::apps::DEFAULT_KNOWN_APPS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            transfer_hangup_after: Duration::ZERO,
            park_event: false,
            faults: Vec::new(),
            record_frames: true,
            first_command_timeout: Duration::from_secs(25),
            max_duration: Duration::from_secs(300),
        }
    }

    /// Real-switch pacing: 20 ms park-loop delay before each queued command.
    pub fn realistic(mut self) -> Self {
        self.app_start_delay = Duration::from_millis(20);
        self
    }

    /// Load-generator settings: no frame recording.
    pub fn lean(mut self) -> Self {
        self.record_frames = false;
        self
    }

    /// Use the loopback channel shape (trace conn01) instead of SIP, keeping the numbers.
    pub fn loopback(mut self) -> Self {
        self.channel.kind = ChannelKind::Loopback;
        if self.channel.caller_id_number == "1001" {
            self.channel.caller_id_number = "0000000000".into();
            self.channel.caller_id_name.clear();
        }
        self
    }

    /// Channel uuid.
    pub fn uuid(mut self, uuid: &str) -> Self {
        self.channel.uuid = uuid.to_string();
        self
    }

    /// Caller-ID number and name.
    pub fn caller(mut self, number: &str, name: &str) -> Self {
        self.channel.caller_id_number = number.to_string();
        self.channel.caller_id_name = name.to_string();
        self
    }

    /// `variable_account_id` (`None`: the dialplan set none).
    pub fn account(mut self, account_id: Option<&str>) -> Self {
        self.channel.account_id = account_id.map(str::to_string);
        self
    }

    /// SIP realm (`domain_name`, `sip_req_host`, ...).
    pub fn domain(mut self, domain: &str) -> Self {
        self.channel.domain_name = domain.to_string();
        self
    }

    /// One more variable set by the dialplan before `socket`.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.channel
            .extra_vars
            .push((name.to_string(), value.to_string()));
        self
    }

    /// The `socket` app's target (`socket_host`, `current_application_data`).
    pub fn socket_address(mut self, addr: &str) -> Self {
        self.channel.socket_address = addr.to_string();
        self
    }

    /// Adds scripted digits in [`parse_digits`](Self::parse_digits) syntax.
    pub fn dtmf(mut self, spec: &str) -> Result<Self, ScriptError> {
        self.dtmf.extend(Self::parse_digits(spec)?);
        Ok(self)
    }

    /// One digit at a call time.
    pub fn dtmf_at(mut self, digit: char, at: Duration) -> Self {
        self.dtmf.push(ScriptedDtmf {
            digit,
            at: DtmfAt::CallTime(at),
        });
        self
    }

    /// One digit `offset` after the `nth` start of `app`.
    pub fn dtmf_after_app(mut self, digit: char, app: &str, nth: usize, offset: Duration) -> Self {
        self.dtmf.push(ScriptedDtmf {
            digit,
            at: DtmfAt::AppStart {
                app: app.to_string(),
                nth: nth.max(1),
                offset,
            },
        });
        self
    }

    /// The caller hangs up (NORMAL_CLEARING) this long after the call start.
    pub fn hangup_after(mut self, after: Duration) -> Self {
        self.hangup_after = Some(after);
        self
    }

    /// Default media length.
    pub fn media_time(mut self, d: Duration) -> Self {
        self.media_time = d;
        self
    }

    /// Length of files whose path contains `pattern`.
    pub fn file_duration(mut self, pattern: &str, d: Duration) -> Self {
        self.file_durations.push((pattern.to_string(), d));
        self
    }

    /// Files whose path contains `pattern` do not exist (FILE NOT FOUND).
    pub fn missing_file(mut self, pattern: &str) -> Self {
        self.missing_files.push(pattern.to_string());
        self
    }

    /// Park-loop delay before each queued command starts.
    pub fn app_start_delay(mut self, d: Duration) -> Self {
        self.app_start_delay = d;
        self
    }

    /// Duration of a blocking app (`conference`, `record`, `gentones`, ...).
    pub fn app_duration(mut self, app: &str, d: Duration) -> Self {
        self.app_durations.push((app.to_string(), d));
        self
    }

    /// Bridges whose dial string contains `pattern` (`*`: all) do `outcome`.
    pub fn bridge(mut self, pattern: &str, outcome: BridgeOutcome) -> Self {
        self.bridge.push(BridgeRule {
            pattern: pattern.to_string(),
            outcome,
        });
        self
    }

    /// Teaches the switch one more app name (it behaves as an instant app answering `_none_`).
    pub fn known_app(mut self, app: &str) -> Self {
        if !self.known_apps.iter().any(|a| a == app) {
            self.known_apps.push(app.to_string());
        }
        self
    }

    /// Makes an app unknown (executing it hangs up DESTINATION_OUT_OF_ORDER).
    pub fn unknown_app(mut self, app: &str) -> Self {
        self.known_apps.retain(|a| a != app);
        self
    }

    /// Fire CHANNEL_PARK after `myevents`.
    pub fn park_event(mut self, on: bool) -> Self {
        self.park_event = on;
        self
    }

    /// Injects a fault.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Safety limit for the whole fake call.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }

    /// Parses scripted digits: comma-separated `DIGITS@WHEN` items.
    ///
    /// * `WHEN` is a call time (`2s`, `1.5s`, `300ms`, `1m`; a bare number is milliseconds), or
    ///   `APP[#N]+OFFSET` to anchor on the Nth (default first) start of an app:
    ///   `1@playback+300ms`, `#@read#2+1s`.
    /// * Several digits in one item are pressed 100 ms apart: `123#@2s`.
    ///
    /// ```
    /// # use callflowd::fakeswitch::CallScript;
    /// let d = CallScript::parse_digits("1@2s,#@3s").unwrap();
    /// assert_eq!(d.len(), 2);
    /// ```
    pub fn parse_digits(spec: &str) -> Result<Vec<ScriptedDtmf>, ScriptError> {
        let mut out = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (digits, when) = item
                .split_once('@')
                .ok_or_else(|| ScriptError(format!("`{item}`: expected DIGITS@WHEN")))?;
            if digits.is_empty() {
                return Err(ScriptError(format!("`{item}`: no digits")));
            }
            if let Some(bad) = digits.chars().find(|c| !is_dtmf(*c)) {
                return Err(ScriptError(format!(
                    "`{item}`: `{bad}` is not a DTMF digit"
                )));
            }
            let gap = Duration::from_millis(100);
            let first = when.chars().next().unwrap_or(' ');
            if !(first.is_ascii_alphanumeric() || first == '.' || first == '_') {
                return Err(ScriptError(format!("`{item}`: bad time or app `{when}`")));
            }
            if first.is_ascii_digit() || first == '.' {
                let base = parse_duration(when)?;
                for (i, digit) in digits.chars().enumerate() {
                    out.push(ScriptedDtmf {
                        digit,
                        at: DtmfAt::CallTime(base + gap * i as u32),
                    });
                }
            } else {
                let (anchor, offset) = match when.split_once('+') {
                    Some((a, o)) => (a, parse_duration(o)?),
                    None => (when, Duration::ZERO),
                };
                let (app, nth) = match anchor.split_once('#') {
                    Some((a, n)) => (
                        a,
                        n.parse::<usize>()
                            .map_err(|_| ScriptError(format!("`{item}`: bad occurrence `{n}`")))?,
                    ),
                    None => (anchor, 1),
                };
                if app.is_empty() {
                    return Err(ScriptError(format!("`{item}`: empty app name")));
                }
                for (i, digit) in digits.chars().enumerate() {
                    out.push(ScriptedDtmf {
                        digit,
                        at: DtmfAt::AppStart {
                            app: app.to_string(),
                            nth: nth.max(1),
                            offset: offset + gap * i as u32,
                        },
                    });
                }
            }
        }
        Ok(out)
    }

    /// The media length of `file` (per-file rule, `silence_stream://N` = N ms, else media_time).
    pub fn file_time(&self, file: &str) -> Duration {
        if let Some((_, d)) = self
            .file_durations
            .iter()
            .find(|(p, _)| file.contains(p.as_str()))
        {
            return *d;
        }
        if let Some(ms) = file.strip_prefix("silence_stream://") {
            let ms = ms.split([',', ';']).next().unwrap_or_default();
            if let Ok(ms) = ms.trim().parse::<i64>() {
                // silence_stream://-1 plays forever; treat it like the default length.
                if ms >= 0 {
                    return Duration::from_millis(ms as u64);
                }
            }
        }
        self.media_time
    }

    /// True when `file` is scripted as missing.
    pub fn file_missing(&self, file: &str) -> bool {
        self.missing_files.iter().any(|p| file.contains(p.as_str()))
    }

    /// Scripted duration of a blocking app, if any.
    pub fn app_time(&self, app: &str) -> Option<Duration> {
        self.app_durations
            .iter()
            .find(|(a, _)| a == app)
            .map(|(_, d)| *d)
    }

    /// The bridge outcome for a dial string.
    pub fn bridge_outcome(&self, dial_string: &str) -> BridgeOutcome {
        self.bridge
            .iter()
            .find(|r| r.pattern == "*" || dial_string.contains(r.pattern.as_str()))
            .map(|r| r.outcome.clone())
            .unwrap_or_else(|| self.default_bridge.clone())
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d')
}

/// Parses `2s`, `1.5s`, `300ms`, `1m`, `250` (milliseconds).
pub fn parse_duration(s: &str) -> Result<Duration, ScriptError> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 0.001)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| ScriptError(format!("bad duration `{s}`")))?;
    if !v.is_finite() || v < 0.0 || v * scale > 1e7 {
        return Err(ScriptError(format!("bad duration `{s}`")));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_call_time_digits() {
        let d = CallScript::parse_digits("1@2s, #@3.5s,12@250").expect("valid");
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].digit, '1');
        assert_eq!(d[0].at, DtmfAt::CallTime(Duration::from_secs(2)));
        assert_eq!(d[1].at, DtmfAt::CallTime(Duration::from_millis(3500)));
        assert_eq!(d[3].at, DtmfAt::CallTime(Duration::from_millis(350)));
    }

    #[test]
    fn parses_app_anchored_digits() {
        let d = CallScript::parse_digits("9#@read#2+1s,5@playback").expect("valid");
        assert_eq!(
            d[1].at,
            DtmfAt::AppStart {
                app: "read".into(),
                nth: 2,
                offset: Duration::from_millis(1100)
            }
        );
        assert_eq!(
            d[2].at,
            DtmfAt::AppStart {
                app: "playback".into(),
                nth: 1,
                offset: Duration::ZERO
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "1",
            "x@2s",
            "1@",
            "1@2x",
            "1@read#x+1s",
            "@2s",
            "1@-2s",
            "1@+1s",
        ] {
            assert!(CallScript::parse_digits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_times() {
        let s = CallScript::new("1000")
            .media_time(Duration::from_millis(7))
            .file_duration("long", Duration::from_secs(3));
        assert_eq!(s.file_time("/x/long.wav"), Duration::from_secs(3));
        assert_eq!(
            s.file_time("silence_stream://250"),
            Duration::from_millis(250)
        );
        assert_eq!(
            s.file_time("tone_stream://%(1,2,3)"),
            Duration::from_millis(7)
        );
    }
}

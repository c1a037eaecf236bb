//! Pure pieces of app semantics: the known-app list, hangup causes, FreeSWITCH's
//! `switch_channel_handle_cause` rule for failed bridges, `DIALSTATUS`, `${var}` expansion and
//! the argument syntax of `read` / `play_and_get_digits`.

use freeswitch_esl_tokio::HangupCause;
use std::time::Duration;

/// Apps the fake switch knows by default (mod_dptools, mod_conference, mod_valet_parking...).
/// Apps without a specific model below run instantly and answer `_none_`.
pub const DEFAULT_KNOWN_APPS: &[&str] = &[
    "answer",
    "pre_answer",
    "ring_ready",
    "playback",
    "endless_playback",
    "speak",
    "say",
    "phrase",
    "sleep",
    "set",
    "export",
    "unset",
    "multiset",
    "set_global",
    "push",
    "unshift",
    "read",
    "play_and_get_digits",
    "bridge",
    "hangup",
    "respond",
    "park",
    "transfer",
    "conference",
    "record",
    "record_session",
    "stop_record_session",
    "valet_park",
    "intercept",
    "eavesdrop",
    "log",
    "info",
    "noop",
    "event",
    "echo",
    "gentones",
    "break",
    "send_dtmf",
    "queue_dtmf",
    "flush_dtmf",
    "bind_digit_action",
    "clear_digit_action",
    "digit_action_set_realm",
    "bind_meta_app",
    "unbind_meta_app",
    "sched_hangup",
    "sched_transfer",
    "redirect",
    "deflect",
    "limit",
    "db",
    "hash",
    "group",
    "set_user",
    "set_zombie_exec",
    "wait_for_answer",
    "wait_for_silence",
    "detect_speech",
    "displace_session",
    "stop_displace_session",
    "soft_hold",
    "privacy",
    "presence",
    "system",
];

/// Q.850 code FreeSWITCH puts in `hangup_cause_q850` (`switch_channel_cause_q850`): the cause
/// number up to INTERWORKING (127), NORMAL_CLEARING (16) for FreeSWITCH's own causes.
pub fn q850(cause: &str) -> u16 {
    match cause_number(cause) {
        Some(n) if n <= 127 => n,
        _ => 16,
    }
}

/// The numeric cause (`switch_call_cause_t`) of a cause name or number.
pub fn cause_number(cause: &str) -> Option<u16> {
    parse_cause(cause).map(|c| c.as_number())
}

fn parse_cause(cause: &str) -> Option<HangupCause> {
    let c = cause.trim();
    if let Ok(n) = c.parse::<u16>() {
        return HangupCause::from_number(n);
    }
    c.to_ascii_uppercase().parse::<HangupCause>().ok()
}

/// Canonical cause name for a name or a number (`user_busy`, `17` -> `USER_BUSY`); unknown
/// input gives `None` (FreeSWITCH would use NONE).
pub fn cause_name(cause: &str) -> Option<String> {
    parse_cause(cause).map(|c| c.as_str().to_string())
}

/// The cause FreeSWITCH hangs up with for a final SIP response code of `respond`.
pub fn sip_cause(code: u16) -> String {
    HangupCause::from_sip_response(code)
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "NORMAL_UNSPECIFIED".into())
}

fn list_has(list: &str, cause: &str) -> bool {
    let num = cause_number(cause).map(|n| n.to_string());
    list.split(',')
        .map(str::trim)
        .any(|item| item.eq_ignore_ascii_case(cause) || num.as_deref().is_some_and(|n| item == n))
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "enabled" | "active" | "allow" | "1"
    ) || v.trim().parse::<i64>().is_ok_and(|n| n != 0)
}

/// FreeSWITCH's `switch_true`.
pub fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(is_true)
}

/// `switch_channel_handle_cause` after a failed bridge: true when the A-leg gets hung up.
///
/// * If `continue_on_fail` or `failure_causes` is set: `failure_causes` not listing the cause
///   means continue; `continue_on_fail` true, or listing the cause (name or number), means
///   continue; otherwise hang up.
/// * If neither is set: NO_ANSWER, NO_USER_RESPONSE and ORIGINATOR_CANCEL continue; anything
///   else hangs up.
/// * ATTENDED_TRANSFER always hangs up.
pub fn bridge_failure_hangs_up(
    cause: &str,
    continue_on_fail: Option<&str>,
    failure_causes: Option<&str>,
) -> bool {
    if cause == "ATTENDED_TRANSFER" {
        return true;
    }
    if continue_on_fail.is_none() && failure_causes.is_none() {
        return !matches!(
            cause,
            "NO_ANSWER" | "NO_USER_RESPONSE" | "ORIGINATOR_CANCEL"
        );
    }
    if let Some(fc) = failure_causes {
        if !list_has(fc, cause) {
            return false;
        }
    }
    if let Some(cof) = continue_on_fail {
        if is_true(cof) || list_has(cof, cause) {
            return false;
        }
    }
    true
}

/// `DIALSTATUS` switch_ivr_originate sets for a failed originate.
pub fn dialstatus(cause: &str) -> String {
    match cause {
        "ORIGINATOR_CANCEL" => "CANCEL".into(),
        "USER_BUSY" => "BUSY".into(),
        "NO_ANSWER" => "NOANSWER".into(),
        "INVALID_NUMBER_FORMAT" | "INVALID_PROFILE" => "INVALIDARGS".into(),
        "CALL_REJECTED" => "DONTCALL".into(),
        other => other.to_string(),
    }
}

/// Expands `${name}` references from `lookup` the way the switch expands Application-Data
/// (no nesting, no `${func(...)}`; an unset variable expands to nothing).
pub fn expand_vars<'a>(data: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    if !data.contains("${") {
        return data.to_string();
    }
    let mut out = String::with_capacity(data.len());
    let mut rest = data;
    while let Some(pos) = rest.find("${") {
        // `$${global}` is left alone (global variables are not modelled).
        if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
            out.push_str(&rest[..pos + 2]);
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(lookup(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[pos..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Digit collection parameters of `read` and `play_and_get_digits`.
#[derive(Debug, Clone, PartialEq)]
pub struct Collect {
    /// Fewest digits for success.
    pub min: usize,
    /// Most digits; collection stops there.
    pub max: usize,
    /// Attempts (1 for `read`).
    pub tries: usize,
    /// Wait for the first digit after the prompt.
    pub timeout: Duration,
    /// Wait between digits.
    pub digit_timeout: Duration,
    /// Digits that end the input (not stored).
    pub terminators: String,
    /// Prompt.
    pub file: String,
    /// Played after invalid input (`play_and_get_digits`).
    pub invalid_file: String,
    /// Variable receiving the digits.
    pub var: String,
    /// Validation regex (`play_and_get_digits`).
    pub regex: Option<String>,
    /// `play_and_get_digits`' transfer-on-failure extension.
    pub transfer_on_failure: Option<String>,
}

fn ms(s: &str, what: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{what} `{s}` is not a number of milliseconds"))
}

fn count(s: &str, what: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("{what} `{s}` is not a number"))
}

/// `read <min> <max> <file> <var> <timeout> <terminators> [<digit_timeout>]`.
pub fn parse_read(arg: &str) -> Result<Collect, String> {
    let a: Vec<&str> = arg.split_whitespace().collect();
    if a.len() < 6 {
        return Err(format!("read needs at least 6 arguments, got {}", a.len()));
    }
    let timeout = ms(a[4], "timeout")?;
    Ok(Collect {
        min: count(a[0], "min")?,
        max: count(a[1], "max")?.max(1),
        tries: 1,
        timeout,
        digit_timeout: match a.get(6) {
            Some(s) => ms(s, "digit_timeout")?,
            None => timeout,
        },
        terminators: terminators(a[5]),
        file: a[2].to_string(),
        invalid_file: String::new(),
        var: a[3].to_string(),
        regex: None,
        transfer_on_failure: None,
    })
}

/// `play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file> <invalid_file>
/// <var> <regexp> [<digit_timeout>] ['<failure_ext> [dp [ctx]]']`.
pub fn parse_pagd(arg: &str) -> Result<Collect, String> {
    let a: Vec<&str> = arg.split_whitespace().collect();
    if a.len() < 9 {
        return Err(format!(
            "play_and_get_digits needs at least 9 arguments, got {}",
            a.len()
        ));
    }
    let timeout = ms(a[3], "timeout")?;
    let digit_timeout = match a.get(9) {
        Some(s) => ms(s, "digit_timeout")?,
        None => timeout,
    };
    Ok(Collect {
        min: count(a[0], "min")?,
        max: count(a[1], "max")?.max(1),
        tries: count(a[2], "tries")?.max(1),
        timeout,
        digit_timeout,
        terminators: terminators(a[4]),
        file: a[5].to_string(),
        invalid_file: a[6].to_string(),
        var: a[7].to_string(),
        regex: Some(a[8].to_string()),
        transfer_on_failure: a.get(10).map(|s| s.trim_matches('\'').to_string()),
    })
}

fn terminators(s: &str) -> String {
    match s {
        "none" => String::new(),
        "any" => "0123456789*#".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes() {
        assert_eq!(q850("NORMAL_CLEARING"), 16);
        assert_eq!(q850("USER_BUSY"), 17);
        assert_eq!(q850("ORIGINATOR_CANCEL"), 16);
        assert_eq!(cause_name("user_busy").as_deref(), Some("USER_BUSY"));
        assert_eq!(cause_name("17").as_deref(), Some("USER_BUSY"));
        assert_eq!(cause_name("bogus"), None);
        assert_eq!(sip_cause(486), "USER_BUSY");
        assert_eq!(sip_cause(404), "UNALLOCATED_NUMBER");
    }

    #[test]
    fn handle_cause_rule() {
        // No variables: only NO_ANSWER / NO_USER_RESPONSE / ORIGINATOR_CANCEL continue.
        assert!(bridge_failure_hangs_up("USER_BUSY", None, None));
        assert!(!bridge_failure_hangs_up("NO_ANSWER", None, None));
        assert!(!bridge_failure_hangs_up("ORIGINATOR_CANCEL", None, None));
        // continue_on_fail=true: everything continues.
        assert!(!bridge_failure_hangs_up("USER_BUSY", Some("true"), None));
        // A list: only listed causes continue (names or numbers), and NO_ANSWER loses its
        // exemption once the variable is set.
        assert!(!bridge_failure_hangs_up(
            "USER_BUSY",
            Some("USER_BUSY,NO_ANSWER"),
            None
        ));
        assert!(!bridge_failure_hangs_up("USER_BUSY", Some("17"), None));
        assert!(bridge_failure_hangs_up(
            "NO_ANSWER",
            Some("USER_BUSY"),
            None
        ));
        assert!(bridge_failure_hangs_up("USER_BUSY", Some("false"), None));
        // failure_causes not listing the cause: continue.
        assert!(!bridge_failure_hangs_up(
            "USER_BUSY",
            None,
            Some("NO_ANSWER")
        ));
        assert!(bridge_failure_hangs_up(
            "ATTENDED_TRANSFER",
            Some("true"),
            None
        ));
    }

    #[test]
    fn expansion() {
        let vars = |k: &str| match k {
            "a" => Some("1"),
            _ => None,
        };
        assert_eq!(expand_vars("x=${a},y=${b}", vars), "x=1,y=");
        assert_eq!(expand_vars("$${g} ${a", vars), "$${g} ${a");
        assert_eq!(expand_vars("plain", vars), "plain");
    }

    #[test]
    fn read_args() {
        let c = parse_read("1 4 ivr/enter.wav digits 5000 # 3000").expect("valid");
        assert_eq!((c.min, c.max, c.var.as_str()), (1, 4, "digits"));
        assert_eq!(c.digit_timeout, Duration::from_secs(3));
        assert!(parse_read("1 4 x").is_err());
        assert!(parse_read("a 4 f v 5000 #").is_err());
        let p = parse_pagd("2 5 3 7000 # prompt.wav invalid.wav pin \\d+ 2000").expect("ok");
        assert_eq!((p.tries, p.regex.as_deref()), (3, Some("\\d+")));
        assert_eq!(p.timeout, Duration::from_secs(7));
        assert_eq!(p.digit_timeout, Duration::from_secs(2));
    }
}

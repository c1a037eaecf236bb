//! Kazoo temporal rules: a pure engine that decides whether "now" is inside a rule.
//!
//! `temporal_route` picks a callflow branch by date and time of day ("office hours", "public
//! holidays", "every other Friday"). Kazoo keeps each rule as a `temporal_rules` document and groups
//! them in `temporal_rules_sets`; this file parses those documents, computes occurrences the way
//! Kazoo's `cf_temporal_route:next_rule_date/2` does, and checks the time window in the route's time
//! zone. It does no I/O: documents come in through [`RuleSource`] and the current instant through
//! [`Clock`], which is what lets the tests pin "now" to the hour a DST change happens.
//!
//! ## How a rule is evaluated (Kazoo `process_rules/3`, 2600hz/kazoo @13c6ad71)
//! 1. The instant is converted to the zone's **wall clock** (DST-aware, `chrono-tz`); everything
//!    below works on that local date and local seconds, so a 09:00–17:00 window means 09:00–17:00
//!    on the wall clock also on the days the clocks change.
//! 2. `start_date` (Gregorian seconds, UTC) is converted to a local date; a rule whose start date is
//!    after today is discarded — even when `enabled` is `true`.
//! 3. `enabled: false` never matches, `enabled: true` always matches, absent = evaluate.
//! 4. A rule without `cycle` is skipped.
//! 5. The next occurrence is computed from *yesterday* (from *today* for `weekly`); the rule is
//!    active when that occurrence is today and `time_window_start <= seconds since local midnight
//!    <= time_window_stop` (both inclusive, whole seconds).
//!
//! ## Kazoo quirks that are kept on purpose (so migrated rules behave the same)
//! - Dates roll over like Kazoo's `kz_date:normalize/1`: `days: [31]` fires on the 1st after a
//!   30-day month, a yearly 29 February fires on 1 March in common years.
//! - A `monthly` `fifth` weekday that a month lacks rolls into the next month (Kazoo's
//!   `date_of_dow/4`); with `interval: 1` it fires there only when it lands on the 1st (e.g. the
//!   "fifth Monday" of June 2024 fires on Monday 1 July). `yearly` + `fifth` skips to the next year
//!   that has one.
//! - Yesterday's distance to the start is truncated toward zero, so a `daily`/`monthly`/`yearly`
//!   rule with `interval > 1` does not fire on its start date itself (every 3 days from 1 March
//!   fires on 4, 7, ... March). Set `start_date` one interval earlier to include it.
//! - `monthly`/`yearly` weekday rules take exactly one weekday (Kazoo only has clauses for one);
//!   more than one is treated as a malformed rule.
//! - An overnight window (start > stop) never matches; split it into two rules.
//! - `end_date` is ignored, as in Kazoo's callflow module.
//!
//! ## Deliberate differences
//! - Malformed documents never crash the call: the rule is logged and does not match (Kazoo's
//!   module would crash and continue to `_`).
//! - `days` are sorted and de-duplicated (Kazoo warns that unsorted days give "weird predictions").
//! - A rule may carry its own `timezone` (an extension; Kazoo only has the route's). The module
//!   resolves the zone as: route `timezone`, then the rule's, then the account default.
//! - Searches that Kazoo would loop on forever (a fifth weekday of February with an interval that
//!   never reaches a leap year) give up after [`MAX_YEARLY_SEARCH`] tries: no match.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Seconds between 0000-01-01 (Erlang's `calendar` epoch, used for Kazoo's `start_date` and
/// `pvt_*` timestamps) and the Unix epoch: `gregorian = unix + GREGORIAN_UNIX_OFFSET`.
pub const GREGORIAN_UNIX_OFFSET: i64 = 62_167_219_200;

/// Length of a day in the time-window arithmetic (wall-clock seconds).
pub const SECONDS_IN_DAY: i64 = 86_400;

/// Store collection holding `temporal_rules` documents.
pub const RULES_COLLECTION: &str = "temporal_rules";

/// Store collections tried, in order, for rule sets: Kazoo's API name `temporal_rules_sets`, then
/// `temporal_rule_sets` (the name used in callflowd's issue), so either spelling of the
/// collection works.
pub const RULE_SET_COLLECTIONS: [&str; 2] = ["temporal_rules_sets", "temporal_rule_sets"];

/// `call.kvs` key that pins "now" for one call (tests, `simulate`): an RFC 3339 string
/// (`"2024-03-10T13:30:00Z"`) or integer Unix seconds. See [`now_override`].
pub const NOW_OVERRIDE_KEY: &str = "temporal_now";

/// Child key Kazoo uses for rules that came from the node's `rule_set` (not the set's id).
pub const RULE_SET_CHILD_KEY: &str = "rule_set";

/// Upper bound on the number of (rule, child key) pairs one node evaluates, so a hostile rule set
/// cannot make a call spin.
pub const MAX_ROUTES: usize = 512;

/// Largest accepted `interval` (Kazoo has none; this keeps the date arithmetic far from overflow).
pub const MAX_INTERVAL: i64 = 100_000;

/// How many candidate years a yearly ordinal search tries before giving up (Kazoo loops forever).
pub const MAX_YEARLY_SEARCH: usize = 400;

/// Kazoo's default rule name (`?RULE_DEFAULT_NAME`), used in logs.
const DEFAULT_NAME: &str = "no_name";

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// Where "now" comes from, so tests and `simulate` can evaluate rules at any instant.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant (tests, and calls carrying [`NOW_OVERRIDE_KEY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Parses the [`NOW_OVERRIDE_KEY`] value: an RFC 3339 timestamp or integer Unix seconds. `None`
/// (and a warning) for anything else, so a typo falls back to the real clock instead of failing.
pub fn now_override(value: &Value) -> Option<DateTime<Utc>> {
    let parsed = match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        _ => None,
    };
    if parsed.is_none() {
        tracing::warn!(key = NOW_OVERRIDE_KEY, %value, "unusable time override; using the real clock");
    }
    parsed
}

/// The clock a call should use: a [`FixedClock`] when the call's key/value store carries a valid
/// [`NOW_OVERRIDE_KEY`], else the [`SystemClock`].
pub fn clock_for(kvs: &HashMap<String, Value>) -> Box<dyn Clock> {
    match kvs.get(NOW_OVERRIDE_KEY).and_then(now_override) {
        Some(now) => Box::new(FixedClock(now)),
        None => Box::new(SystemClock),
    }
}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/// Recurrence cycle of a rule (`cycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// Exactly on `start_date`.
    Date,
    /// Every `interval` days from `start_date`.
    Daily,
    /// On `wdays` of every `interval`-th ISO week counted from `start_date`'s week.
    Weekly,
    /// On `days`, or on the `ordinal` weekday, of every `interval`-th month from `start_date`.
    Monthly,
    /// In `month`, on `days` or the `ordinal` weekday, every `interval`-th year.
    Yearly,
}

impl Cycle {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "date" => Cycle::Date,
            "daily" => Cycle::Daily,
            "weekly" => Cycle::Weekly,
            "monthly" => Cycle::Monthly,
            "yearly" => Cycle::Yearly,
            _ => return None,
        })
    }
}

/// Which occurrence of a weekday in the month (`ordinal`; Kazoo's default is `first`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordinal {
    /// Every such weekday of the month.
    Every,
    /// The 1st.
    First,
    /// The 2nd.
    Second,
    /// The 3rd.
    Third,
    /// The 4th.
    Fourth,
    /// The 5th (rolls into the next month when missing, as in Kazoo).
    Fifth,
    /// The last one of the month.
    Last,
}

impl Ordinal {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "every" => Ordinal::Every,
            "first" => Ordinal::First,
            "second" => Ordinal::Second,
            "third" => Ordinal::Third,
            "fourth" => Ordinal::Fourth,
            "fifth" => Ordinal::Fifth,
            "last" => Ordinal::Last,
            _ => return None,
        })
    }

    /// Zero-based week offset (`kz_date:ordinal_to_position/1`); `None` for every/last.
    fn position(self) -> Option<i64> {
        match self {
            Ordinal::First => Some(0),
            Ordinal::Second => Some(1),
            Ordinal::Third => Some(2),
            Ordinal::Fourth => Some(3),
            Ordinal::Fifth => Some(4),
            Ordinal::Every | Ordinal::Last => None,
        }
    }
}

/// Why a stored document cannot be used as a rule or rule set (logged; the rule never matches).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The document is not a JSON object.
    #[error("document is not an object")]
    NotAnObject,
    /// A field has the wrong type or an out-of-range value.
    #[error("field `{field}` is invalid: {reason}")]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn bad(field: &'static str, reason: impl Into<String>) -> RuleError {
    RuleError::Field {
        field,
        reason: reason.into(),
    }
}

/// A parsed `temporal_rules` document (Kazoo schema `temporal_rules.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalRule {
    /// Friendly name (logs only); Kazoo's default `no_name`.
    pub name: String,
    /// Recurrence; `None` when absent (Kazoo skips such a rule unless `enabled` forces it).
    pub cycle: Option<Cycle>,
    /// Every n-th day/week/month/year, ≥ 1 (default 1).
    pub interval: i64,
    /// Days of the month, 1..=31, sorted and unique.
    pub days: Vec<u32>,
    /// ISO weekdays 1 (Monday) ..= 7 (Sunday), sorted and unique; empty = every day for `weekly`.
    pub wdays: Vec<u32>,
    /// Which weekday of the month (default `first`).
    pub ordinal: Ordinal,
    /// Month for `yearly`, 1..=12 (default 1).
    pub month: u32,
    /// Anchor of the recurrence in Gregorian seconds (UTC); `None` = today (Kazoo's callflow default).
    pub start_date: Option<i64>,
    /// Window start, seconds after local midnight (default 0).
    pub time_window_start: i64,
    /// Window end, seconds after local midnight, inclusive (default 86400).
    pub time_window_stop: i64,
    /// Forced state: `Some(true)` always matches, `Some(false)` never, `None` evaluates.
    pub enabled: Option<bool>,
    /// The rule's own zone (callflowd extension), used when the route names none.
    pub timezone: Option<Tz>,
}

impl Default for TemporalRule {
    fn default() -> Self {
        TemporalRule {
            name: DEFAULT_NAME.to_string(),
            cycle: None,
            interval: 1,
            days: Vec::new(),
            wdays: Vec::new(),
            ordinal: Ordinal::First,
            month: 1,
            start_date: None,
            time_window_start: 0,
            time_window_stop: SECONDS_IN_DAY,
            enabled: None,
            timezone: None,
        }
    }
}

/// Integer the way `kz_json:get_integer_value/2` reads it: a JSON integer, an integral float, or
/// a numeric string. `Ok(None)` when absent or null.
fn int_field(doc: &Value, field: &'static str) -> Result<Option<i64>, RuleError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => int_value(value)
            .map(Some)
            .ok_or_else(|| bad(field, format!("expected an integer, got {value}"))),
    }
}

fn int_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_field<'a>(doc: &'a Value, field: &'static str) -> Result<Option<&'a str>, RuleError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(bad(field, format!("expected a string, got {other}"))),
    }
}

fn list_field<'a>(doc: &'a Value, field: &'static str) -> Result<&'a [Value], RuleError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items.as_slice()),
        Some(other) => Err(bad(field, format!("expected a list, got {other}"))),
    }
}

/// ISO weekday number of a Kazoo weekday name (`kz_date:wday_to_dow/1`, incl. "wensday").
pub fn weekday_number(name: &str) -> Option<u32> {
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => 1,
        "tuesday" => 2,
        "wednesday" | "wensday" => 3,
        "thursday" => 4,
        "friday" => 5,
        "saturday" => 6,
        "sunday" => 7,
        _ => return None,
    })
}

/// Parses an IANA zone name (`America/New_York`); `None` when chrono-tz does not know it.
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.trim().parse::<Tz>().ok()
}

impl TemporalRule {
    /// Reads a stored `temporal_rules` document, rejecting wrong types and out-of-range values
    /// (the caller logs the error and treats the rule as not matching).
    pub fn from_doc(doc: &Value) -> Result<Self, RuleError> {
        if !doc.is_object() {
            return Err(RuleError::NotAnObject);
        }
        let mut rule = TemporalRule::default();
        if let Some(name) = str_field(doc, "name")? {
            rule.name = name.to_string();
        }
        if let Some(cycle) = str_field(doc, "cycle")? {
            rule.cycle = Some(
                Cycle::parse(&cycle.to_ascii_lowercase())
                    .ok_or_else(|| bad("cycle", format!("unknown cycle {cycle:?}")))?,
            );
        }
        if let Some(interval) = int_field(doc, "interval")? {
            if !(1..=MAX_INTERVAL).contains(&interval) {
                return Err(bad("interval", format!("must be 1..{MAX_INTERVAL}")));
            }
            rule.interval = interval;
        }
        for value in list_field(doc, "days")? {
            match int_value(value) {
                Some(day @ 1..=31) => rule.days.push(day as u32),
                _ => return Err(bad("days", format!("{value} is not a day 1..31"))),
            }
        }
        rule.days.sort_unstable();
        rule.days.dedup();
        for value in list_field(doc, "wdays")? {
            match value.as_str().and_then(weekday_number) {
                Some(dow) => rule.wdays.push(dow),
                None => return Err(bad("wdays", format!("{value} is not a weekday name"))),
            }
        }
        rule.wdays.sort_unstable();
        rule.wdays.dedup();
        if let Some(ordinal) = str_field(doc, "ordinal")? {
            rule.ordinal = Ordinal::parse(&ordinal.to_ascii_lowercase())
                .ok_or_else(|| bad("ordinal", format!("unknown ordinal {ordinal:?}")))?;
        }
        if let Some(month) = int_field(doc, "month")? {
            if !(1..=12).contains(&month) {
                return Err(bad("month", "must be 1..12"));
            }
            rule.month = month as u32;
        }
        if let Some(start) = int_field(doc, "start_date")? {
            if DateTime::from_timestamp(start.saturating_sub(GREGORIAN_UNIX_OFFSET), 0).is_none() {
                return Err(bad(
                    "start_date",
                    "out of range (Gregorian seconds expected)",
                ));
            }
            rule.start_date = Some(start);
        }
        for (field, slot) in [
            ("time_window_start", &mut rule.time_window_start),
            ("time_window_stop", &mut rule.time_window_stop),
        ] {
            if let Some(seconds) = int_field(doc, field)? {
                if !(0..=SECONDS_IN_DAY).contains(&seconds) {
                    return Err(bad(field, "must be 0..86400 seconds after midnight"));
                }
                *slot = seconds;
            }
        }
        rule.enabled = match doc.get("enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            Some(other) => return Err(bad("enabled", format!("expected a boolean, got {other}"))),
        };
        if let Some(zone) = str_field(doc, "timezone")? {
            rule.timezone = Some(
                parse_zone(zone)
                    .ok_or_else(|| bad("timezone", format!("unknown zone {zone:?}")))?,
            );
        }
        Ok(rule)
    }
}

/// A parsed `temporal_rules_sets` document: a named group of rules that matches when any member
/// matches (Kazoo schema `temporal_rules_sets.json`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    /// Friendly name (logs only).
    pub name: String,
    /// Member rule ids, in document order.
    pub temporal_rules: Vec<String>,
}

impl RuleSet {
    /// Reads a stored rule set; non-string members are skipped with a warning.
    pub fn from_doc(doc: &Value) -> Result<Self, RuleError> {
        if !doc.is_object() {
            return Err(RuleError::NotAnObject);
        }
        let name = str_field(doc, "name")?.unwrap_or_default().to_string();
        let mut temporal_rules = Vec::new();
        for item in list_field(doc, "temporal_rules")? {
            match item.as_str() {
                Some(id) if !id.is_empty() => temporal_rules.push(id.to_string()),
                _ => {
                    tracing::warn!(set = %name, %item, "rule set member is not a rule id; skipped")
                }
            }
        }
        Ok(RuleSet {
            name,
            temporal_rules,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (Kazoo's kz_date + the helpers in cf_temporal_route)
// ---------------------------------------------------------------------------------------------

/// ISO weekday 1..=7 (Monday = 1), like Erlang's `calendar:day_of_the_week/1`.
fn dow(date: NaiveDate) -> i64 {
    i64::from(date.weekday().number_from_monday())
}

fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    let n = i64::from(date.num_days_from_ce()).checked_add(days)?;
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(n).ok()?)
}

fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// Builds a date from a possibly improper `{Y, M, D}` the way `kz_date:normalize/1` does: months
/// outside 1..12 carry into the year, days past the month's end (or ≤ 0) carry into the next (or
/// previous) month. `ymd(2011, 4, 31)` is 1 May 2011; `ymd(2011, 13, 1)` is 1 Jan 2012.
fn ymd(year: i64, month: i64, day: i64) -> Option<NaiveDate> {
    let months = year.checked_mul(12)?.checked_add(month.checked_sub(1)?)?;
    let y = i32::try_from(months.div_euclid(12)).ok()?;
    let m = u32::try_from(months.rem_euclid(12) + 1).ok()?;
    add_days(NaiveDate::from_ymd_opt(y, m, 1)?, day.checked_sub(1)?)
}

/// Monday of the ISO week holding `date` (`kz_date:from_iso_week(calendar:iso_week_number(D))`).
fn iso_monday(date: NaiveDate) -> Option<NaiveDate> {
    add_days(date, 1 - dow(date))
}

/// Whole ISO weeks between the weeks of two dates, always ≥ 0 (`iso_week_difference/2`).
fn iso_week_difference(a: NaiveDate, b: NaiveDate) -> Option<i64> {
    Some((day_number(iso_monday(a)?) - day_number(iso_monday(b)?)).abs() / 7)
}

/// The next `weekday` strictly after `date` (`kz_date:find_next_weekday/2`).
fn next_weekday_after(date: NaiveDate, weekday: i64) -> Option<NaiveDate> {
    let ahead = (weekday - dow(date)).rem_euclid(7);
    add_days(date, if ahead == 0 { 7 } else { ahead })
}

/// The `position`-th (0-based) `weekday` of a possibly improper month; may roll into the next
/// month when it has fewer such weekdays (`date_of_dow/4` / `find_ordinal_weekday/4`).
fn ordinal_weekday(year: i64, month: i64, weekday: i64, position: i64) -> Option<NaiveDate> {
    let first = ymd(year, month, 1)?;
    let ahead = (weekday - dow(first)).rem_euclid(7);
    add_days(first, ahead + 7 * position)
}

/// The last `weekday` of a possibly improper month (`find_last_weekday/2`).
fn last_weekday(year: i64, month: i64, weekday: i64) -> Option<NaiveDate> {
    let first = ymd(year, month, 1)?;
    let fifth = ordinal_weekday(year, month, weekday, 4)?;
    if fifth.month() == first.month() && fifth.year() == first.year() {
        Some(fifth)
    } else {
        ordinal_weekday(year, month, weekday, 3)
    }
}

/// `Y*12 + M` distance in months and the interval-aligned offset, as Kazoo computes them
/// (integer division truncating toward zero, like Erlang's `trunc(A / B)`).
fn month_distance(start: NaiveDate, search: NaiveDate, interval: i64) -> (i64, i64) {
    let distance = (i64::from(search.year()) - i64::from(start.year())) * 12
        - i64::from(start.month())
        + i64::from(search.month());
    (distance, distance / interval * interval)
}

/// The date of the next occurrence of `rule` after `search` — Kazoo's `next_rule_date/2`.
///
/// `start` is the rule's start date already converted to the local zone. Kazoo calls this with
/// yesterday (today for `weekly`), and the rule is "on" today when the result is today. Exposed so
/// previews (e.g. "next time this rule fires") and the ported Kazoo test table can call it.
/// `None` when the rule cannot produce a date (no cycle, several weekdays for a monthly/yearly
/// rule, or a search that never ends).
pub fn next_occurrence(
    rule: &TemporalRule,
    start: NaiveDate,
    search: NaiveDate,
) -> Option<NaiveDate> {
    let interval = rule.interval.max(1);
    match rule.cycle? {
        Cycle::Date => Some(start),
        Cycle::Daily => {
            let distance = day_number(search) - day_number(start);
            add_days(start, distance / interval * interval + interval)
        }
        Cycle::Weekly => weekly(rule, interval, start, search),
        Cycle::Monthly => monthly(rule, interval, start, search),
        Cycle::Yearly => yearly(rule, interval, start, search),
    }
}

fn weekly(
    rule: &TemporalRule,
    interval: i64,
    start: NaiveDate,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let all_days = [1, 2, 3, 4, 5, 6, 7];
    let wdays: Vec<i64> = if rule.wdays.is_empty() {
        all_days.to_vec()
    } else {
        rule.wdays.iter().map(|d| i64::from(*d)).collect()
    };
    let first_wday = *wdays.first()?;
    // Kazoo re-enters once with the start date as "today" when the start is later this week.
    let mut today = today;
    for _ in 0..2 {
        let dow0 = dow(today);
        let distance = iso_week_difference(start, today)?;
        let offset = distance / interval * interval;
        let active = wdays.iter().copied().find(|d| *d >= dow0);
        match active {
            Some(_) if today < start && distance == offset => {
                today = start;
                continue;
            }
            Some(day) if today == start && day == dow0 && distance == offset => return Some(start),
            Some(day) if distance == offset => return add_days(today, day - dow0),
            _ => {
                let monday = iso_monday(start)?;
                return add_days(monday, (offset + interval) * 7 + (first_wday - 1));
            }
        }
    }
    None
}

/// The single weekday a monthly/yearly weekday rule names (Kazoo matches `wdays=[Weekday]` only).
fn single_weekday(rule: &TemporalRule) -> Option<i64> {
    match rule.wdays.as_slice() {
        [one] => Some(i64::from(*one)),
        _ => None,
    }
}

fn monthly(
    rule: &TemporalRule,
    interval: i64,
    start: NaiveDate,
    search: NaiveDate,
) -> Option<NaiveDate> {
    let (y0, m0) = (i64::from(start.year()), i64::from(start.month()));
    let (y1, m1, d1) = (
        i64::from(search.year()),
        i64::from(search.month()),
        i64::from(search.day()),
    );
    let (distance, offset) = month_distance(start, search, interval);
    let active = distance == offset;

    if let Some(&first_day) = rule.days.first() {
        return match rule.days.iter().map(|d| i64::from(*d)).find(|d| *d > d1) {
            Some(day) if active => ymd(y0, m0 + offset, day),
            _ => ymd(y0, m0 + offset + interval, i64::from(first_day)),
        };
    }

    let weekday = single_weekday(rule)?;
    match rule.ordinal {
        Ordinal::Every => {
            if active {
                let date = next_weekday_after(search, weekday)?;
                if (i64::from(date.year()), i64::from(date.month())) == (y1, m1) || interval == 1 {
                    return Some(date);
                }
            }
            ordinal_weekday(y0, m0 + offset + interval, weekday, 0)
        }
        Ordinal::Last => {
            if active {
                let date = last_weekday(y1, m1, weekday)?;
                if d1 < i64::from(date.day()) {
                    return Some(date);
                }
            }
            last_weekday(y0, m0 + offset + interval, weekday)
        }
        ordinal => {
            let position = ordinal.position()?;
            if active {
                let date = ordinal_weekday(y1, m1, weekday, position)?;
                let (m2, d2) = (i64::from(date.month()), i64::from(date.day()));
                if interval > 1 && m2 == m1 && d1 < d2 {
                    return Some(date);
                }
                if interval == 1 && (d1 < d2 || m1 < m2) {
                    return Some(date);
                }
            }
            ordinal_weekday(y0, m0 + offset + interval, weekday, position)
        }
    }
}

fn yearly(
    rule: &TemporalRule,
    interval: i64,
    start: NaiveDate,
    search: NaiveDate,
) -> Option<NaiveDate> {
    let y0 = i64::from(start.year());
    let (y1, m1, d1) = (
        i64::from(search.year()),
        i64::from(search.month()),
        i64::from(search.day()),
    );
    let month = i64::from(rule.month);
    let distance = y1 - y0;
    let offset = distance / interval * interval;
    let active = distance == offset;
    let next_year = y0 + offset + interval;

    if let Some(&first_day) = rule.days.first() {
        let first_day = i64::from(first_day);
        return if !active || m1 > month {
            ymd(next_year, month, first_day)
        } else if m1 < month {
            ymd(y1, month, first_day)
        } else {
            match rule.days.iter().map(|d| i64::from(*d)).find(|d| *d > d1) {
                Some(day) => ymd(y1, month, day),
                None => ymd(next_year, month, first_day),
            }
        };
    }

    let weekday = single_weekday(rule)?;
    // "Before the target month, or in it before the occurrence": the computed date stands.
    let stands = |date: NaiveDate, need_month: bool| {
        i64::from(date.year()) == y1
            && (!need_month || i64::from(date.month()) == month)
            && (m1 < month || (m1 == month && d1 < i64::from(date.day())))
    };
    match rule.ordinal {
        Ordinal::Every => {
            if active {
                let date = next_weekday_after(ymd(y1, month, d1)?, weekday)?;
                if stands(date, true) {
                    return Some(date);
                }
            }
            ordinal_weekday(next_year, month, weekday, 0)
        }
        Ordinal::Last => {
            if active {
                let date = last_weekday(y1, month, weekday)?;
                if stands(date, false) {
                    return Some(date);
                }
            }
            last_weekday(next_year, month, weekday)
        }
        ordinal => {
            let position = ordinal.position()?;
            if active {
                let date = ordinal_weekday(y1, month, weekday, position)?;
                if stands(date, true) {
                    return Some(date);
                }
            }
            // A fifth weekday may not exist this year: try every interval-th year after.
            let mut year = next_year;
            for _ in 0..MAX_YEARLY_SEARCH {
                let date = ordinal_weekday(year, month, weekday, position)?;
                if i64::from(date.month()) == month {
                    return Some(date);
                }
                year = year.checked_add(interval)?;
            }
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// The outcome of evaluating one rule, kept apart so logs and tests can say *why*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `enabled: true` forces a match.
    ForcedOn,
    /// Today is an occurrence and now is inside the time window.
    Active,
    /// `enabled: false` forces no match.
    ForcedOff,
    /// The start date is after today; Kazoo discards the rule.
    NotStarted,
    /// No `cycle`: Kazoo skips the rule as invalid.
    NoCycle,
    /// Not an occurrence today, or outside the time window.
    Inactive,
    /// The rule's dates cannot be computed (e.g. a monthly rule with several weekdays).
    Unresolvable,
}

impl Verdict {
    /// Whether the rule selects its branch.
    pub fn is_match(self) -> bool {
        matches!(self, Verdict::ForcedOn | Verdict::Active)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::ForcedOn => "forced active",
            Verdict::Active => "within its active time window",
            Verdict::ForcedOff => "disabled",
            Verdict::NotStarted => "starts in the future",
            Verdict::NoCycle => "has no cycle",
            Verdict::Inactive => "not active now",
            Verdict::Unresolvable => "cannot be computed",
        })
    }
}

/// Local wall-clock time of `now` in `zone`, to the whole second (Kazoo's `local_sec`).
pub fn local_time(now: DateTime<Utc>, zone: Tz) -> NaiveDateTime {
    let local = now.with_timezone(&zone).naive_local();
    local.with_nanosecond(0).unwrap_or(local)
}

/// The local date a Gregorian-seconds start date falls on in `zone` (`kz_date:from_gregorian_seconds/2`).
pub fn start_date_in(gregorian_seconds: i64, zone: Tz) -> Option<NaiveDate> {
    let utc = DateTime::from_timestamp(gregorian_seconds.checked_sub(GREGORIAN_UNIX_OFFSET)?, 0)?;
    Some(utc.with_timezone(&zone).date_naive())
}

/// Evaluates `rule` at `now` in `zone` (the zone already resolved by the caller; the rule's own
/// `timezone` is not consulted here). See the module docs for the steps.
pub fn evaluate(rule: &TemporalRule, now: DateTime<Utc>, zone: Tz) -> Verdict {
    let local = local_time(now, zone);
    let today = local.date();
    let start = match rule.start_date {
        Some(seconds) => match start_date_in(seconds, zone) {
            Some(date) => date,
            None => return Verdict::Unresolvable,
        },
        None => today,
    };
    if start > today {
        return Verdict::NotStarted;
    }
    match rule.enabled {
        Some(false) => return Verdict::ForcedOff,
        Some(true) => return Verdict::ForcedOn,
        None => {}
    }
    let Some(cycle) = rule.cycle else {
        return Verdict::NoCycle;
    };
    let search = if cycle == Cycle::Weekly {
        Some(today)
    } else {
        add_days(today, -1)
    };
    let Some(base) = search.and_then(|search| next_occurrence(rule, start, search)) else {
        return Verdict::Unresolvable;
    };
    let since_base = (local - base.and_time(chrono::NaiveTime::MIN)).num_seconds();
    if since_base < rule.time_window_start || since_base > rule.time_window_stop {
        Verdict::Inactive
    } else {
        Verdict::Active
    }
}

/// Whether `rule` matches at `now`, computed in the rule's own `timezone` or else `default_zone`.
pub fn matches(rule: &TemporalRule, now: DateTime<Utc>, default_zone: Tz) -> bool {
    evaluate(rule, now, rule.timezone.unwrap_or(default_zone)).is_match()
}

/// The zone a rule is evaluated in: the route's `timezone` (Kazoo's only setting), else the rule's
/// own, else the account default.
pub fn effective_zone(route_zone: Option<Tz>, rule: &TemporalRule, account_default: Tz) -> Tz {
    route_zone.or(rule.timezone).unwrap_or(account_default)
}

// ---------------------------------------------------------------------------------------------
// Route selection (Kazoo get_temporal_route/2 + process_rules/3)
// ---------------------------------------------------------------------------------------------

/// Read access to rule and rule-set documents; implemented over the store by the module and over
/// maps by tests, which keeps selection pure.
pub trait RuleSource {
    /// The `temporal_rules` document with this id.
    fn rule(&self, id: &str) -> Option<Value>;
    /// The rule-set document with this id.
    fn rule_set(&self, id: &str) -> Option<Value>;
}

/// In-memory documents (tests, previews).
#[derive(Debug, Clone, Default)]
pub struct MemRules {
    /// Rules by id.
    pub rules: HashMap<String, Value>,
    /// Rule sets by id.
    pub sets: HashMap<String, Value>,
}

impl RuleSource for MemRules {
    fn rule(&self, id: &str) -> Option<Value> {
        self.rules.get(id).cloned()
    }
    fn rule_set(&self, id: &str) -> Option<Value> {
        self.sets.get(id).cloned()
    }
}

/// One rule to evaluate and the child key it selects when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Id of the `temporal_rules` document.
    pub rule_id: String,
    /// Child key to continue with: the rule id, the id of the set it came from, or `rule_set`.
    pub child_key: String,
}

fn set_members(source: &dyn RuleSource, id: &str) -> Vec<String> {
    match source.rule_set(id).map(|doc| RuleSet::from_doc(&doc)) {
        Some(Ok(set)) => set.temporal_rules,
        Some(Err(error)) => {
            tracing::warn!(set = id, %error, "rule set is malformed; ignored");
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// Kazoo's route list, in evaluation order: the node's `rules`, then its child keys (minus `_`),
/// then the members of `rule_set` (child key `rule_set`). Any id in the first two that names a
/// non-empty rule set is replaced by the set's members, each selecting the set's id. Capped at
/// [`MAX_ROUTES`].
pub fn build_routes<'a>(
    rules: &[String],
    child_keys: impl IntoIterator<Item = &'a str>,
    rule_set: Option<&str>,
    source: &dyn RuleSource,
) -> Vec<Route> {
    let keys: Vec<&str> = child_keys.into_iter().filter(|k| *k != "_").collect();
    let direct = rules.iter().map(String::as_str).chain(keys);
    let mut routes = Vec::new();
    for id in direct {
        let members = set_members(source, id);
        if members.is_empty() {
            routes.push(Route {
                rule_id: id.to_string(),
                child_key: id.to_string(),
            });
        } else {
            routes.extend(members.into_iter().map(|rule_id| Route {
                rule_id,
                child_key: id.to_string(),
            }));
        }
    }
    if let Some(set_id) = rule_set.filter(|s| !s.is_empty()) {
        routes.extend(
            set_members(source, set_id)
                .into_iter()
                .map(|rule_id| Route {
                    rule_id,
                    child_key: RULE_SET_CHILD_KEY.to_string(),
                }),
        );
    }
    if routes.len() > MAX_ROUTES {
        tracing::warn!(
            routes = routes.len(),
            max = MAX_ROUTES,
            "too many temporal rules; extra ones ignored"
        );
        routes.truncate(MAX_ROUTES);
    }
    routes
}

/// Evaluates `routes` in order and returns the child key of the first match (`None` = `_`).
/// Missing and malformed rules are logged and skipped.
pub fn first_match(
    routes: &[Route],
    source: &dyn RuleSource,
    now: DateTime<Utc>,
    route_zone: Option<Tz>,
    account_default: Tz,
) -> Option<String> {
    for route in routes {
        let Some(doc) = source.rule(&route.rule_id) else {
            tracing::info!(rule = %route.rule_id, "temporal rule not found; skipped");
            continue;
        };
        let rule = match TemporalRule::from_doc(&doc) {
            Ok(rule) => rule,
            Err(error) => {
                tracing::warn!(rule = %route.rule_id, %error, "temporal rule is malformed; treated as no match");
                continue;
            }
        };
        let zone = effective_zone(route_zone, &rule, account_default);
        let verdict = evaluate(&rule, now, zone);
        tracing::info!(
            rule = %route.rule_id, name = %rule.name, zone = %zone,
            local = %local_time(now, zone), "temporal rule {verdict}"
        );
        if verdict == Verdict::Unresolvable {
            tracing::warn!(rule = %route.rule_id, "temporal rule dates cannot be computed; treated as no match");
        }
        if verdict.is_match() {
            return Some(route.child_key.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::{America::New_York, Europe::Berlin, UTC};
    use serde_json::json;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Gregorian seconds of midnight UTC on a date (how Kazoo stores `start_date`).
    fn greg(text: &str) -> i64 {
        date(text)
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp()
            + GREGORIAN_UNIX_OFFSET
    }

    /// Runs one line of the ported eunit table:
    /// `"<cycle> [i=N] [o=ordinal] [w=day,day] [d=1,2] [m=M] s=<start> | <search> => <expected>"`.
    fn check(line: &str) {
        let (spec, dates) = line.split_once('|').unwrap();
        let (search, want) = dates.split_once("=>").unwrap();
        let mut words = spec.split_whitespace();
        let mut rule = TemporalRule {
            cycle: Cycle::parse(words.next().unwrap()),
            ..TemporalRule::default()
        };
        let mut start = None;
        for word in words {
            let (key, value) = word.split_once('=').unwrap();
            match key {
                "i" => rule.interval = value.parse().unwrap(),
                "o" => rule.ordinal = Ordinal::parse(value).unwrap(),
                "w" => {
                    rule.wdays = value
                        .split(',')
                        .map(|w| weekday_number(w).unwrap())
                        .collect()
                }
                "d" => rule.days = value.split(',').map(|d| d.parse().unwrap()).collect(),
                "m" => rule.month = value.parse().unwrap(),
                "s" => start = Some(date(value)),
                _ => panic!("bad key in {line}"),
            }
        }
        rule.wdays.sort_unstable();
        let got = next_occurrence(&rule, start.unwrap(), date(search.trim()));
        assert_eq!(got, Some(date(want.trim())), "{line}");
    }

    #[test]
    fn kazoo_daily_recurrence() {
        for line in [
            "daily s=2011-01-01 | 2011-01-01 => 2011-01-02",
            "daily s=2011-06-01 | 2011-06-01 => 2011-06-02",
            "daily s=2011-01-01 | 2011-01-31 => 2011-02-01",
            "daily s=2011-06-01 | 2011-06-30 => 2011-07-01",
            "daily s=2010-01-01 | 2010-12-31 => 2011-01-01",
            "daily s=2010-06-01 | 2010-12-31 => 2011-01-01",
            "daily s=2008-01-01 | 2008-02-28 => 2008-02-29",
            "daily s=2008-01-01 | 2008-02-29 => 2008-03-01",
            "daily s=2008-01-01 | 2011-01-01 => 2011-01-02",
            "daily s=2010-01-01 | 2011-01-01 => 2011-01-02",
            "daily i=4 s=2011-01-01 | 2011-01-01 => 2011-01-05",
            "daily i=4 s=2011-01-01 | 2011-01-29 => 2011-02-02",
            "daily i=4 s=2010-01-01 | 2010-12-31 => 2011-01-04",
            "daily i=4 s=2011-06-01 | 2011-06-01 => 2011-06-05",
            "daily i=4 s=2011-06-01 | 2011-06-29 => 2011-07-03",
            "daily i=7 s=2011-01-01 | 2011-01-01 => 2011-01-08",
            "daily i=7 s=2011-01-01 | 2011-01-29 => 2011-02-05",
            "daily i=7 s=2010-01-01 | 2010-12-31 => 2011-01-07",
            "daily i=7 s=2011-06-01 | 2011-06-29 => 2011-07-06",
            "daily i=48 s=2011-01-01 | 2011-01-01 => 2011-02-18",
            "daily i=48 s=2010-01-01 | 2010-12-31 => 2011-01-20",
            "daily i=85 s=2011-01-01 | 2011-01-01 => 2011-03-27",
            "daily i=85 s=2010-01-01 | 2010-12-31 => 2011-03-02",
            "daily i=85 s=2011-06-01 | 2011-06-01 => 2011-08-25",
            "daily i=4 s=2011-01-05 | 2011-01-05 => 2011-01-09",
            "daily i=4 s=2011-01-05 | 2011-01-06 => 2011-01-09",
            "daily i=4 s=2011-02-01 | 2011-02-03 => 2011-02-05",
            "daily i=4 s=2011-02-02 | 2011-02-03 => 2011-02-06",
            "daily i=4 s=1983-04-11 | 2011-01-01 => 2011-01-02",
            "daily i=4 s=1983-04-11 | 2011-04-11 => 2011-04-12",
        ] {
            check(line);
        }
    }

    #[test]
    fn kazoo_weekly_recurrence() {
        for line in [
            // basic increment, over month and year boundaries, leap years
            "weekly w=monday s=2011-01-01 | 2011-01-02 => 2011-01-03",
            "weekly w=wensday s=2011-01-01 | 2011-01-02 => 2011-01-05",
            "weekly w=sunday s=2011-01-01 | 2011-01-02 => 2011-01-02",
            "weekly w=monday s=2011-01-01 | 2011-02-01 => 2011-02-07",
            "weekly w=tuesday s=2011-01-01 | 2011-01-26 => 2011-02-01",
            "weekly w=sunday s=2011-01-01 | 2011-01-31 => 2011-02-06",
            "weekly w=monday s=2010-01-01 | 2010-12-28 => 2011-01-03",
            "weekly w=friday s=2010-01-01 | 2011-01-01 => 2011-01-07",
            "weekly w=saturday s=2010-01-01 | 2010-12-26 => 2011-01-01",
            "weekly w=friday s=2008-01-01 | 2008-02-28 => 2008-02-29",
            "weekly w=saturday s=2008-01-01 | 2008-02-29 => 2008-03-01",
            "weekly w=friday s=2008-01-01 | 2008-03-01 => 2008-03-07",
            // current date on
            "weekly w=sunday s=2011-01-01 | 2011-01-01 => 2011-01-02",
            "weekly w=monday s=2011-01-01 | 2011-01-04 => 2011-01-10",
            "weekly w=saturday s=2011-01-01 | 2011-01-02 => 2011-01-08",
            // multiple weekdays
            "weekly w=monday,tuesday,wensday,thursday,friday,saturday,sunday s=2011-01-01 | 2011-01-02 => 2011-01-02",
            "weekly w=monday,tuesday,wensday,thursday,friday,saturday s=2011-01-01 | 2011-01-02 => 2011-01-03",
            "weekly w=friday,saturday s=2011-01-01 | 2011-01-02 => 2011-01-07",
            "weekly w=monday,tuesday,wensday,thursday,friday s=2011-01-01 | 2011-01-08 => 2011-01-10",
            // every other / third / 24th / 37th week
            "weekly i=2 w=sunday s=2010-12-25 | 2011-01-01 => 2011-01-09",
            "weekly i=2 w=monday s=2011-01-01 | 2011-01-01 => 2011-01-10",
            "weekly i=2 w=saturday s=2011-01-01 | 2011-01-02 => 2011-01-15",
            "weekly i=2 w=sunday s=2011-01-01 | 2011-01-01 => 2011-01-02",
            "weekly i=2 w=sunday s=2011-01-01 | 2011-01-02 => 2011-01-02",
            "weekly i=2 w=sunday s=2011-01-01 | 2011-01-03 => 2011-01-16",
            "weekly i=3 w=sunday s=2010-12-25 | 2010-12-31 => 2011-01-16",
            "weekly i=3 w=thursday s=2011-01-01 | 2011-01-01 => 2011-01-20",
            "weekly i=3 w=sunday s=2011-01-01 | 2011-01-03 => 2011-01-23",
            "weekly i=24 w=sunday s=2010-12-25 | 2010-12-31 => 2011-06-12",
            "weekly i=24 w=friday s=2011-01-01 | 2011-01-01 => 2011-06-17",
            "weekly i=24 w=sunday s=2011-01-01 | 2011-01-03 => 2011-06-19",
            "weekly i=37 w=monday s=2011-01-01 | 2011-01-01 => 2011-09-12",
            "weekly i=36 w=sunday s=2011-01-01 | 2011-01-03 => 2011-09-11",
            // multiple weekdays with a step
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-01 => 2011-01-10",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-09 => 2011-01-10",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-10 => 2011-01-10",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-11 => 2011-01-12",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-13 => 2011-01-14",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-14 => 2011-01-14",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-15 => 2011-01-24",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-17 => 2011-01-24",
            "weekly i=2 w=monday,wensday,friday s=2011-01-01 | 2011-01-29 => 2011-02-07",
            "weekly i=2 w=monday,wensday,friday s=2010-01-01 | 2011-01-01 => 2011-01-10",
            // shifted start dates and long spans
            "weekly i=5 w=monday s=2004-01-01 | 2011-01-01 => 2011-01-31",
            "weekly i=5 w=tuesday s=2005-02-08 | 2011-01-01 => 2011-01-18",
            "weekly i=5 w=wensday s=2006-03-15 | 2011-01-01 => 2011-02-02",
            "weekly i=5 w=thursday s=2007-04-22 | 2011-01-01 => 2011-01-13",
            "weekly i=5 w=friday s=2008-05-29 | 2011-01-01 => 2011-02-04",
            "weekly i=5 w=saturday s=2009-06-01 | 2011-01-01 => 2011-01-22",
            "weekly i=5 w=sunday s=2010-07-08 | 2011-01-01 => 2011-01-02",
            "weekly i=4 w=monday s=1983-04-11 | 2011-01-01 => 2011-01-10",
            "weekly i=4 w=monday s=1983-04-11 | 2011-04-11 => 2011-05-02",
            "weekly w=monday,tuesday,wednesday,thursday,friday,saturday,sunday s=1983-04-11 | 2018-01-08 => 2018-01-08",
            "weekly w=monday s=1983-04-11 | 2018-01-08 => 2018-01-08",
            "weekly w=monday s=1983-04-11 | 2018-01-09 => 2018-01-15",
            "weekly w=sunday s=1983-04-11 | 2018-01-15 => 2018-01-21",
            "weekly w=monday,tuesday,wednesday,thursday,friday,saturday,sunday s=2018-01-01 | 2018-01-08 => 2018-01-08",
            "weekly w=monday s=2018-01-01 | 2018-01-14 => 2018-01-15",
            "weekly w=monday s=2018-01-02 | 2018-01-14 => 2018-01-15",
            "weekly w=tuesday s=2018-01-02 | 2018-01-15 => 2018-01-16",
            // start date later in the same week (Kazoo re-searches from the start date)
            "weekly w=monday s=2011-01-03 | 2011-01-03 => 2011-01-03",
            "weekly w=monday s=2011-01-04 | 2011-01-03 => 2011-01-10",
            "weekly w=tuesday s=2011-01-04 | 2011-01-03 => 2011-01-04",
            "weekly w=tuesday s=2011-01-05 | 2011-01-03 => 2011-01-11",
            "weekly w=thursday s=2011-01-06 | 2011-01-03 => 2011-01-06",
            "weekly w=friday s=2011-01-08 | 2011-01-03 => 2011-01-14",
            "weekly w=saturday s=2011-01-08 | 2011-01-03 => 2011-01-08",
            "weekly w=saturday s=2011-01-09 | 2011-01-03 => 2011-01-15",
            "weekly w=sunday s=2011-01-09 | 2011-01-03 => 2011-01-09",
            "weekly w=sunday s=2011-01-10 | 2011-01-03 => 2011-01-16",
        ] {
            check(line);
        }
    }

    #[test]
    fn kazoo_monthly_every_and_last_recurrence() {
        for line in [
            "monthly o=every w=monday s=2011-01-01 | 2011-01-01 => 2011-01-03",
            "monthly o=every w=monday s=2011-01-01 | 2011-01-24 => 2011-01-31",
            "monthly o=every w=tuesday s=2011-01-01 | 2011-01-25 => 2011-02-01",
            "monthly o=every w=sunday s=2011-01-01 | 2011-01-30 => 2011-02-06",
            "monthly o=every w=saturday s=2010-01-01 | 2010-12-25 => 2011-01-01",
            "monthly o=every w=friday s=2008-01-01 | 2008-02-28 => 2008-02-29",
            "monthly o=every w=saturday s=2008-01-01 | 2008-02-28 => 2008-03-01",
            "monthly o=every w=tuesday s=2011-01-10 | 2011-01-14 => 2011-01-18",
            "monthly o=every w=friday s=2008-05-01 | 2011-01-28 => 2011-02-04",
            "monthly i=2 o=every w=monday s=2011-01-01 | 2011-01-31 => 2011-03-07",
            "monthly i=2 o=every w=tuesday s=2011-01-01 | 2011-01-25 => 2011-03-01",
            "monthly i=3 o=every w=thursday s=2011-06-01 | 2011-06-30 => 2011-09-01",
            "monthly i=4 o=every w=monday s=2011-01-01 | 2011-02-02 => 2011-05-02",
            "monthly i=4 o=every w=wensday s=2011-01-17 | 2011-03-21 => 2011-05-04",
            "monthly i=5 o=every w=monday s=2004-01-01 | 2011-01-01 => 2011-02-07",
            "monthly i=5 o=every w=thursday s=2007-04-01 | 2011-01-01 => 2011-01-06",
            "monthly i=5 o=every w=sunday s=2010-07-01 | 2011-01-01 => 2011-05-01",
            "monthly i=5 o=every w=monday s=1983-04-11 | 2011-01-01 => 2011-03-07",
            "monthly o=last w=monday s=2011-01-01 | 2011-01-01 => 2011-01-31",
            "monthly o=last w=tuesday s=2011-01-01 | 2011-01-01 => 2011-01-25",
            "monthly o=last w=friday s=2011-06-01 | 2011-06-01 => 2011-06-24",
            "monthly o=last w=thursday s=2011-06-01 | 2011-06-01 => 2011-06-30",
            "monthly o=last w=monday s=2011-01-01 | 2011-01-31 => 2011-02-28",
            "monthly o=last w=tuesday s=2011-01-01 | 2011-01-31 => 2011-02-22",
            "monthly o=last w=sunday s=2010-01-01 | 2010-12-31 => 2011-01-30",
            "monthly o=last w=friday s=2008-01-01 | 2008-02-01 => 2008-02-29",
            "monthly o=last w=saturday s=2008-01-01 | 2008-02-01 => 2008-02-23",
            "monthly o=last w=wensday s=2006-11-01 | 2011-01-01 => 2011-01-26",
            "monthly i=2 o=last w=monday s=2011-01-01 | 2011-01-31 => 2011-03-28",
            "monthly i=3 o=last w=sunday s=2011-01-01 | 2011-01-31 => 2011-04-24",
            "monthly i=36 o=last w=friday s=2011-01-01 | 2011-01-31 => 2014-01-31",
            "monthly i=37 o=last w=saturday s=2011-01-01 | 2011-01-31 => 2014-02-22",
            "monthly i=3 o=last w=monday s=2010-12-01 | 2011-01-01 => 2011-03-28",
            "monthly i=3 o=last w=tuesday s=2010-10-01 | 2011-01-01 => 2011-01-25",
            "monthly i=3 o=last w=wensday s=2010-11-01 | 2011-01-01 => 2011-02-23",
            "monthly i=5 o=last w=thursday s=1983-04-11 | 2011-01-01 => 2011-03-31",
        ] {
            check(line);
        }
    }

    #[test]
    fn kazoo_monthly_ordinal_recurrence() {
        for line in [
            "monthly o=first w=monday s=2011-01-01 | 2011-01-01 => 2011-01-03",
            "monthly o=first w=saturday s=2011-01-01 | 2011-01-01 => 2011-02-05",
            "monthly o=second w=saturday s=2011-01-01 | 2011-01-01 => 2011-01-08",
            "monthly o=third w=friday s=2011-01-01 | 2011-01-01 => 2011-01-21",
            "monthly o=fourth w=thursday s=2011-01-01 | 2011-01-01 => 2011-01-27",
            // a fifth weekday that January 2011 lacks rolls into February (interval 1)
            "monthly o=fifth w=monday s=2011-01-01 | 2011-01-01 => 2011-01-31",
            "monthly o=fifth w=tuesday s=2011-01-01 | 2011-01-01 => 2011-02-01",
            "monthly o=fifth w=friday s=2011-01-01 | 2011-01-01 => 2011-02-04",
            "monthly o=fifth w=sunday s=2011-01-01 | 2011-01-01 => 2011-01-30",
            // on an occurrence: the next month's
            "monthly o=first w=monday s=2011-01-01 | 2011-01-03 => 2011-02-07",
            "monthly o=fourth w=monday s=2011-01-01 | 2011-01-24 => 2011-02-28",
            // leap year
            "monthly o=first w=friday s=2008-01-01 | 2008-02-01 => 2008-03-07",
            "monthly o=fourth w=thursday s=2008-01-01 | 2008-02-01 => 2008-02-28",
            "monthly o=fifth w=friday s=2008-01-01 | 2008-02-01 => 2008-02-29",
            "monthly o=fifth w=monday s=2008-01-01 | 2008-02-01 => 2008-03-03",
            "monthly o=fifth w=saturday s=2008-01-01 | 2008-02-01 => 2008-03-01",
            "monthly o=fifth w=friday s=2008-05-01 | 2011-01-01 => 2011-02-04",
            // steps
            "monthly i=2 o=first w=monday s=2011-01-01 | 2011-01-31 => 2011-03-07",
            "monthly i=2 o=second w=tuesday s=2011-01-01 | 2011-01-31 => 2011-03-08",
            "monthly i=2 o=third w=sunday s=2011-01-01 | 2011-01-31 => 2011-03-20",
            "monthly i=2 o=fourth w=monday s=2011-01-01 | 2011-01-31 => 2011-03-28",
            "monthly i=2 o=fifth w=thursday s=2011-01-01 | 2011-01-31 => 2011-03-31",
            "monthly i=3 o=first w=friday s=2011-01-01 | 2011-01-31 => 2011-04-01",
            "monthly i=3 o=fourth w=friday s=2011-01-01 | 2011-01-31 => 2011-04-22",
            "monthly i=3 o=fifth w=saturday s=2011-01-01 | 2011-01-31 => 2011-04-30",
            "monthly i=5 o=second w=tuesday s=2005-02-01 | 2011-01-01 => 2011-05-10",
            "monthly i=5 o=fourth w=thursday s=2007-04-01 | 2011-01-01 => 2011-01-27",
            "monthly i=5 o=fifth w=friday s=2008-05-01 | 2011-01-01 => 2011-04-29",
            "monthly i=5 o=fifth w=tuesday s=1983-04-11 | 2011-01-01 => 2011-03-29",
            "monthly i=5 o=first w=sunday s=1983-04-11 | 2011-01-01 => 2011-03-06",
        ] {
            check(line);
        }
    }

    #[test]
    fn kazoo_monthly_date_recurrence() {
        for day in 1..=30 {
            check(&format!(
                "monthly d={} s=2011-01-01 | 2011-01-{day:02} => 2011-01-{:02}",
                day + 1,
                day + 1
            ));
        }
        for line in [
            "monthly d=25 s=2011-01-01 | 2011-03-24 => 2011-03-25",
            "monthly d=1 s=2011-01-01 | 2011-01-31 => 2011-02-01",
            "monthly d=1 s=2010-01-01 | 2010-12-31 => 2011-01-01",
            "monthly d=29 s=2008-01-01 | 2008-02-28 => 2008-02-29",
            "monthly d=1 s=2008-01-01 | 2008-02-29 => 2008-03-01",
            "monthly d=2 s=2008-01-01 | 2011-01-01 => 2011-01-02",
            "monthly d=5,10,15,20,25 s=2011-01-01 | 2011-01-01 => 2011-01-05",
            "monthly d=5,10,15,20,25 s=2011-01-01 | 2011-01-05 => 2011-01-10",
            "monthly d=5,10,15,20,25 s=2011-01-01 | 2011-01-19 => 2011-01-20",
            "monthly d=5,10,15,20,25 s=2011-01-01 | 2011-01-25 => 2011-02-05",
            "monthly i=2 d=2 s=2011-01-01 | 2011-01-02 => 2011-03-02",
            "monthly i=2 d=2 s=2011-01-01 | 2011-05-02 => 2011-07-02",
            "monthly i=2 d=2 s=2011-06-01 | 2011-06-01 => 2011-06-02",
            "monthly i=3 d=2 s=2011-01-01 | 2011-07-02 => 2011-10-02",
            "monthly i=24 d=2 s=2011-01-01 | 2011-01-02 => 2013-01-02",
            "monthly i=37 d=2 s=2011-01-01 | 2011-04-02 => 2014-02-02",
            "monthly i=37 d=2 s=2011-06-01 | 2011-06-02 => 2014-07-02",
            "monthly i=3 d=2 s=2007-05-01 | 2011-01-01 => 2011-02-02",
            "monthly i=3 d=2 s=2009-07-03 | 2011-01-01 => 2011-01-02",
            "monthly i=4 d=11 s=1983-04-11 | 2011-01-01 => 2011-04-11",
        ] {
            check(line);
        }
    }

    #[test]
    fn kazoo_yearly_recurrence() {
        for line in [
            "yearly m=4 d=11 s=2011-01-01 | 2011-01-01 => 2011-04-11",
            "yearly m=4 d=11 s=2011-01-01 | 2011-04-10 => 2011-04-11",
            "yearly m=4 d=11 s=2011-01-01 | 2011-04-11 => 2012-04-11",
            "yearly m=2 d=29 s=2008-01-01 | 2008-02-28 => 2008-02-29",
            // Kazoo returns {2009,2,29}; normalised that is 1 March 2009
            "yearly m=2 d=29 s=2008-01-01 | 2008-02-29 => 2009-03-01",
            "yearly m=4 d=11 s=2010-12-11 | 2011-01-01 => 2011-04-11",
            "yearly i=2 m=4 d=11 s=2011-01-01 | 2011-04-11 => 2013-04-11",
            "yearly i=2 m=4 d=11 s=2011-01-01 | 2014-04-11 => 2015-04-11",
            "yearly i=3 m=4 d=11 s=2011-01-01 | 2016-04-11 => 2017-04-11",
            "yearly i=5 m=4 d=11 s=2008-10-11 | 2011-01-01 => 2013-04-11",
            "yearly i=5 m=4 d=11 s=1983-04-11 | 2011-01-01 => 2013-04-11",
            "yearly m=4 d=11,12,13 s=2011-01-01 | 2011-04-11 => 2011-04-12",
            "yearly m=4 d=11,12,13 s=2011-01-01 | 2011-04-13 => 2012-04-11",
            "yearly i=2 m=4 d=11,12,13 s=2011-01-01 | 2011-04-13 => 2013-04-11",
            "yearly m=4 o=first w=monday s=2011-01-01 | 2011-01-01 => 2011-04-04",
            "yearly m=4 o=second w=friday s=2011-01-01 | 2011-01-01 => 2011-04-08",
            "yearly m=4 o=fourth w=sunday s=2011-01-01 | 2011-01-01 => 2011-04-24",
            // fifth weekday: the next year whose April has one
            "yearly m=4 o=fifth w=monday s=2011-01-01 | 2011-01-01 => 2012-04-30",
            "yearly m=4 o=fifth w=thursday s=2011-01-01 | 2011-01-01 => 2015-04-30",
            "yearly m=4 o=fifth w=friday s=2011-01-01 | 2011-01-01 => 2011-04-29",
            "yearly m=4 o=first w=monday s=2011-01-01 | 2011-04-01 => 2011-04-04",
            "yearly m=4 o=first w=monday s=2011-01-01 | 2011-04-11 => 2012-04-02",
            "yearly m=4 o=first w=monday s=2011-01-01 | 2011-06-21 => 2012-04-02",
            "yearly m=4 o=second w=sunday s=2010-07-01 | 2011-01-01 => 2011-04-10",
            "yearly i=2 m=4 o=first w=monday s=2011-01-01 | 2011-05-01 => 2013-04-01",
            "yearly i=2 m=4 o=third w=sunday s=2011-01-01 | 2011-05-01 => 2013-04-21",
            "yearly i=2 m=4 o=fifth w=tuesday s=2011-01-01 | 2011-05-01 => 2013-04-30",
            "yearly i=2 m=4 o=fifth w=friday s=2011-01-01 | 2011-05-01 => 2021-04-30",
            "yearly i=2 m=4 o=fifth w=sunday s=2011-01-01 | 2011-05-01 => 2017-04-30",
        ] {
            check(line);
        }
    }

    #[test]
    fn yearly_every_and_last_weekday() {
        // Not in Kazoo's table (marked TODO there); computed from the same clauses.
        for line in [
            "yearly m=11 o=last w=thursday s=2020-01-01 | 2024-11-01 => 2024-11-28",
            "yearly m=11 o=last w=thursday s=2020-01-01 | 2024-11-28 => 2025-11-27",
            "yearly m=12 o=every w=friday s=2020-01-01 | 2024-12-05 => 2024-12-06",
            "yearly m=12 o=every w=friday s=2020-01-01 | 2024-12-27 => 2025-12-05",
        ] {
            check(line);
        }
    }

    fn rule(doc: Value) -> TemporalRule {
        TemporalRule::from_doc(&doc).unwrap()
    }

    #[test]
    fn parses_kazoo_documents() {
        let r = rule(json!({
            "name": "Office", "cycle": "weekly", "interval": "2", "wdays": ["friday", "wensday", "monday"],
            "days": [15, 1, 15], "ordinal": "last", "month": 7, "start_date": 62586115200u64,
            "time_window_start": 32400, "time_window_stop": 61200, "enabled": null,
            "timezone": "Europe/Berlin", "end_date": 0, "id": "abc"
        }));
        assert_eq!(r.cycle, Some(Cycle::Weekly));
        assert_eq!(r.interval, 2);
        assert_eq!(r.wdays, vec![1, 3, 5]);
        assert_eq!(r.days, vec![1, 15]);
        assert_eq!(r.ordinal, Ordinal::Last);
        assert_eq!(r.month, 7);
        assert_eq!(r.enabled, None);
        assert_eq!(r.timezone, Some(Berlin));
        // the schema's default start date is 1983-04-11 (the eunit "long span" anchor)
        assert_eq!(start_date_in(62586115200, UTC), Some(date("1983-04-11")));
        let defaults = rule(json!({"cycle": "daily"}));
        assert_eq!(
            (defaults.interval, defaults.month, defaults.ordinal),
            (1, 1, Ordinal::First)
        );
        assert_eq!(
            (defaults.time_window_start, defaults.time_window_stop),
            (0, 86400)
        );
        assert_eq!(defaults.name, "no_name");
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for doc in [
            json!("not an object"),
            json!({"cycle": "hourly"}),
            json!({"cycle": 5}),
            json!({"cycle": "daily", "interval": 0}),
            json!({"cycle": "daily", "interval": "often"}),
            json!({"cycle": "daily", "interval": i64::MAX}),
            json!({"cycle": "monthly", "days": [0]}),
            json!({"cycle": "monthly", "days": "1,2"}),
            json!({"cycle": "weekly", "wdays": ["funday"]}),
            json!({"cycle": "weekly", "wdays": [1]}),
            json!({"cycle": "monthly", "ordinal": "sixth"}),
            json!({"cycle": "yearly", "month": 13}),
            json!({"cycle": "daily", "time_window_stop": 90000}),
            json!({"cycle": "daily", "time_window_start": -1}),
            json!({"cycle": "daily", "enabled": "maybe"}),
            json!({"cycle": "daily", "timezone": "Mars/Olympus"}),
            json!({"cycle": "daily", "start_date": i64::MAX}),
            json!({"cycle": "daily", "start_date": i64::MIN}),
        ] {
            assert!(TemporalRule::from_doc(&doc).is_err(), "{doc}");
        }
    }

    #[test]
    fn extreme_values_never_panic() {
        let now = utc("2024-06-01T12:00:00Z");
        for doc in [
            json!({"cycle": "daily", "interval": MAX_INTERVAL, "start_date": greg("2000-01-01")}),
            json!({"cycle": "weekly", "interval": MAX_INTERVAL, "start_date": greg("2000-01-01")}),
            json!({"cycle": "monthly", "interval": MAX_INTERVAL, "days": [31], "start_date": greg("2000-01-01")}),
            json!({"cycle": "yearly", "interval": MAX_INTERVAL, "ordinal": "fifth", "wdays": ["monday"], "month": 2,
                   "start_date": greg("2000-01-01")}),
            json!({"cycle": "yearly", "days": [1], "start_date": 1}),
            json!({"cycle": "weekly", "wdays": ["monday"], "start_date": 1}),
            json!({"cycle": "yearly", "interval": 4, "ordinal": "fifth", "wdays": ["monday"], "month": 2,
                   "start_date": greg("2021-01-01")}),
            json!({"cycle": "monthly", "wdays": ["monday", "friday"]}),
            json!({"cycle": "monthly"}),
            json!({"cycle": "yearly", "ordinal": "every"}),
        ] {
            let r = rule(doc.clone());
            let verdict = evaluate(&r, now, New_York);
            assert!(!verdict.is_match(), "{doc} -> {verdict:?}");
        }
        // year 0 is a valid (if odd) anchor
        assert!(evaluate(&rule(json!({"cycle": "daily", "start_date": 0})), now, UTC).is_match());
    }

    /// Rule × instant × zone × expected: the table the issue asks for.
    #[test]
    fn rules_by_instant_table() {
        let weekdays_9_to_5 = json!({"cycle": "weekly", "wdays": ["monday","tuesday","wednesday","thursday","friday"],
            "time_window_start": 32400, "time_window_stop": 61200, "start_date": greg("2020-01-06")});
        let every_other_friday = json!({"cycle": "weekly", "interval": 2, "wdays": ["friday"], "start_date": greg("2024-01-05")});
        let last_friday = json!({"cycle": "monthly", "ordinal": "last", "wdays": ["friday"], "start_date": greg("2024-01-01")});
        let second_tuesday = json!({"cycle": "monthly", "ordinal": "second", "wdays": ["tuesday"], "start_date": greg("2024-01-01")});
        let fifth_monday = json!({"cycle": "monthly", "ordinal": "fifth", "wdays": ["monday"], "start_date": greg("2024-01-01")});
        let christmas = json!({"cycle": "yearly", "month": 12, "days": [25, 26], "start_date": greg("2000-01-01")});
        let thanksgiving = json!({"cycle": "yearly", "month": 11, "ordinal": "fourth", "wdays": ["thursday"], "start_date": greg("2000-01-01")});
        let payday = json!({"cycle": "monthly", "days": [1, 15], "start_date": greg("2024-01-01")});
        let quarterly = json!({"cycle": "monthly", "interval": 3, "days": [1], "start_date": greg("2024-01-01")});
        let every_third_day =
            json!({"cycle": "daily", "interval": 3, "start_date": greg("2024-03-01")});
        let one_day =
            json!({"cycle": "date", "start_date": greg("2024-07-04"), "time_window_start": 43200});
        let future = json!({"cycle": "daily", "start_date": greg("2030-01-01")});
        let forced_on = json!({"cycle": "weekly", "wdays": ["sunday"], "enabled": true, "start_date": greg("2020-01-01")});
        let forced_off =
            json!({"cycle": "daily", "enabled": false, "start_date": greg("2020-01-01")});
        let forced_on_future =
            json!({"cycle": "daily", "enabled": true, "start_date": greg("2030-01-01")});
        let no_cycle = json!({"name": "x", "start_date": greg("2020-01-01")});
        let forced_no_cycle =
            json!({"name": "x", "enabled": true, "start_date": greg("2020-01-01")});
        let dst_night = json!({"cycle": "daily", "time_window_start": 3600, "time_window_stop": 7199, "start_date": greg("2020-01-01")});

        let table: &[(&Value, &str, Tz, bool)] = &[
            // office hours on the wall clock across the spring change (NY: 10 March 2024, 02:00 EST -> 03:00 EDT)
            (&weekdays_9_to_5, "2024-03-08T13:30:00Z", New_York, false), // Fri 08:30 EST
            (&weekdays_9_to_5, "2024-03-08T14:00:00Z", New_York, true),  // Fri 09:00 EST
            (&weekdays_9_to_5, "2024-03-11T13:00:00Z", New_York, true),  // Mon 09:00 EDT
            (&weekdays_9_to_5, "2024-03-11T12:59:59Z", New_York, false), // Mon 08:59:59 EDT
            (&weekdays_9_to_5, "2024-03-11T21:00:00Z", New_York, true), // Mon 17:00:00 EDT (stop inclusive)
            (&weekdays_9_to_5, "2024-03-11T21:00:01Z", New_York, false), // Mon 17:00:01 EDT
            (&weekdays_9_to_5, "2024-03-10T15:00:00Z", New_York, false), // the Sunday itself
            // ... and the autumn change (NY: 3 November 2024, 02:00 EDT -> 01:00 EST)
            (&weekdays_9_to_5, "2024-11-01T13:00:00Z", New_York, true), // Fri 09:00 EDT
            (&weekdays_9_to_5, "2024-11-04T13:00:00Z", New_York, false), // Mon 08:00 EST
            (&weekdays_9_to_5, "2024-11-04T14:00:00Z", New_York, true), // Mon 09:00 EST
            (&weekdays_9_to_5, "2024-11-04T22:00:00Z", New_York, true), // Mon 17:00 EST
            // Berlin: 31 March 2024 02:00 CET -> 03:00 CEST; 27 October 2024 03:00 CEST -> 02:00 CET
            (&weekdays_9_to_5, "2024-03-29T08:00:00Z", Berlin, true), // Fri 09:00 CET
            (&weekdays_9_to_5, "2024-04-01T07:30:00Z", Berlin, true), // Mon 09:30 CEST
            (&weekdays_9_to_5, "2024-04-01T07:30:00Z", UTC, false),   // Mon 07:30 UTC
            (&weekdays_9_to_5, "2024-10-25T15:00:00Z", Berlin, true), // Fri 17:00 CEST
            (&weekdays_9_to_5, "2024-10-28T15:00:00Z", Berlin, true), // Mon 16:00 CET
            (&weekdays_9_to_5, "2024-10-28T16:00:01Z", Berlin, false), // Mon 17:00:01 CET
            // the local date decides the weekday: Friday 23:00 in New York is Saturday in UTC
            (&weekdays_9_to_5, "2024-03-16T03:00:00Z", New_York, false),
            (&every_other_friday, "2024-03-16T03:00:00Z", New_York, true), // Fri 15 March EDT
            (&every_other_friday, "2024-03-16T03:00:00Z", UTC, false),     // Sat 16 March UTC
            (&every_other_friday, "2024-01-05T12:00:00Z", UTC, true),
            (&every_other_friday, "2024-01-12T12:00:00Z", UTC, false),
            (&every_other_friday, "2024-01-19T12:00:00Z", UTC, true),
            (&every_other_friday, "2024-03-01T12:00:00Z", UTC, true),
            (&every_other_friday, "2024-03-08T12:00:00Z", UTC, false),
            (&every_other_friday, "2024-03-18T12:00:00Z", UTC, false), // a Monday
            // nth weekday of the month
            (&last_friday, "2024-03-29T12:00:00Z", UTC, true),
            (&last_friday, "2024-03-22T12:00:00Z", UTC, false),
            (&last_friday, "2024-05-31T12:00:00Z", UTC, true),
            (&last_friday, "2024-02-23T12:00:00Z", UTC, true),
            (&second_tuesday, "2024-04-09T12:00:00Z", UTC, true),
            (&second_tuesday, "2024-04-02T12:00:00Z", UTC, false),
            (&second_tuesday, "2024-10-08T12:00:00Z", Berlin, true),
            (&fifth_monday, "2024-04-29T12:00:00Z", UTC, true), // April 2024 has five Mondays
            (&fifth_monday, "2024-01-29T12:00:00Z", UTC, true),
            (&fifth_monday, "2024-02-26T12:00:00Z", UTC, false), // only four in February; the
            (&fifth_monday, "2024-03-04T12:00:00Z", UTC, false), // rollover to 4 March never fires
            (&fifth_monday, "2024-07-01T12:00:00Z", UTC, true),  // June's rolls onto 1 July: fires
            // yearly
            (&christmas, "2024-12-25T12:00:00Z", UTC, true),
            (&christmas, "2024-12-26T23:30:00Z", UTC, true),
            (&christmas, "2024-12-27T00:00:00Z", UTC, false),
            (&christmas, "2024-12-26T23:30:00Z", Berlin, false), // already 27 December in Berlin
            (&thanksgiving, "2024-11-28T17:00:00Z", New_York, true),
            (&thanksgiving, "2025-11-27T17:00:00Z", New_York, true),
            (&thanksgiving, "2025-11-20T17:00:00Z", New_York, false),
            // monthly days and intervals
            (&payday, "2024-02-15T08:00:00Z", UTC, true),
            (&payday, "2024-02-16T08:00:00Z", UTC, false),
            (&payday, "2024-03-01T08:00:00Z", UTC, true),
            (&quarterly, "2024-04-01T08:00:00Z", UTC, true),
            (&quarterly, "2024-05-01T08:00:00Z", UTC, false),
            (&quarterly, "2025-01-01T08:00:00Z", UTC, true),
            (&every_third_day, "2024-03-01T08:00:00Z", UTC, false), // Kazoo skips the start day itself
            (&every_third_day, "2024-03-02T08:00:00Z", UTC, false),
            (&every_third_day, "2024-03-04T08:00:00Z", UTC, true),
            (&every_third_day, "2024-03-31T08:00:00Z", UTC, true), // day 30 after the start
            // date cycle with a noon-to-midnight window
            (&one_day, "2024-07-04T11:59:59Z", UTC, false),
            (&one_day, "2024-07-04T12:00:00Z", UTC, true),
            (&one_day, "2024-07-05T12:00:00Z", UTC, false),
            // start date in the future, enabled overrides, missing cycle
            (&future, "2024-06-01T12:00:00Z", UTC, false),
            (&forced_on, "2024-06-05T12:00:00Z", UTC, true), // a Wednesday
            (&forced_off, "2024-06-05T12:00:00Z", UTC, false),
            (&forced_on_future, "2024-06-05T12:00:00Z", UTC, false),
            (&no_cycle, "2024-06-05T12:00:00Z", UTC, false),
            (&forced_no_cycle, "2024-06-05T12:00:00Z", UTC, true),
            // 01:00-01:59:59 on the wall clock: twice on New York's autumn night; in Berlin's spring
            // night 01:30 CET exists but 02:xx is skipped
            (&dst_night, "2024-11-03T05:30:00Z", New_York, true), // 01:30 EDT
            (&dst_night, "2024-11-03T06:30:00Z", New_York, true), // 01:30 EST (again)
            (&dst_night, "2024-11-03T07:30:00Z", New_York, false), // 02:30 EST
            (&dst_night, "2024-03-31T00:30:00Z", Berlin, true),   // 01:30 CET
            (&dst_night, "2024-03-31T01:30:00Z", Berlin, false),  // 03:30 CEST (02:xx skipped)
        ];
        for (doc, instant, zone, want) in table {
            let r = rule((*doc).clone());
            let verdict = evaluate(&r, utc(instant), *zone);
            assert_eq!(
                verdict.is_match(),
                *want,
                "{doc} at {instant} in {zone}: {verdict:?}"
            );
        }
    }

    #[test]
    fn verdicts_say_why() {
        let now = utc("2024-06-05T12:00:00Z");
        let v = |doc: Value| evaluate(&rule(doc), now, UTC);
        assert_eq!(
            v(json!({"cycle": "daily", "start_date": greg("2030-01-01")})),
            Verdict::NotStarted
        );
        assert_eq!(
            v(json!({"cycle": "daily", "enabled": false})),
            Verdict::ForcedOff
        );
        assert_eq!(
            v(json!({"cycle": "daily", "enabled": true})),
            Verdict::ForcedOn
        );
        assert_eq!(v(json!({"name": "no cycle"})), Verdict::NoCycle);
        assert_eq!(v(json!({"cycle": "daily"})), Verdict::Active);
        assert_eq!(
            v(json!({"cycle": "daily", "time_window_stop": 3600})),
            Verdict::Inactive
        );
        assert_eq!(
            v(json!({"cycle": "monthly", "wdays": ["monday", "tuesday"]})),
            Verdict::Unresolvable
        );
        // overnight windows never match (Kazoo compares start <= now <= stop on one day)
        assert_eq!(
            v(json!({"cycle": "daily", "time_window_start": 79200, "time_window_stop": 21600})),
            Verdict::Inactive
        );
    }

    #[test]
    fn start_date_is_read_in_the_zone() {
        // midnight UTC on 1 March is still 29 February in New York, so the rule has started there...
        let r = rule(json!({"cycle": "date", "start_date": greg("2024-03-01")}));
        assert_eq!(
            start_date_in(greg("2024-03-01"), New_York),
            Some(date("2024-02-29"))
        );
        assert!(evaluate(&r, utc("2024-03-01T01:00:00Z"), New_York).is_match());
        // ...and in UTC the date-cycle day is 1 March
        assert!(evaluate(&r, utc("2024-03-01T01:00:00Z"), UTC).is_match());
        assert!(!evaluate(&r, utc("2024-03-02T01:00:00Z"), UTC).is_match());
    }

    #[test]
    fn kazoo_quirks_are_kept() {
        // days: [31] fires on the 1st after a 30-day month (kz_date:normalize)
        let r = rule(json!({"cycle": "monthly", "days": [31], "start_date": greg("2024-01-01")}));
        assert!(evaluate(&r, utc("2024-05-01T12:00:00Z"), UTC).is_match());
        assert!(evaluate(&r, utc("2024-05-31T12:00:00Z"), UTC).is_match());
        assert!(!evaluate(&r, utc("2024-05-30T12:00:00Z"), UTC).is_match());
        // a yearly 29 February fires on 1 March in common years
        let r = rule(
            json!({"cycle": "yearly", "month": 2, "days": [29], "start_date": greg("2020-01-01")}),
        );
        assert!(evaluate(&r, utc("2024-02-29T12:00:00Z"), UTC).is_match());
        assert!(evaluate(&r, utc("2025-03-01T12:00:00Z"), UTC).is_match());
        // unsorted days behave like sorted ones
        let r =
            rule(json!({"cycle": "monthly", "days": [20, 5], "start_date": greg("2024-01-01")}));
        assert!(evaluate(&r, utc("2024-02-05T12:00:00Z"), UTC).is_match());
        assert!(evaluate(&r, utc("2024-02-20T12:00:00Z"), UTC).is_match());
        // weekly without wdays = every day
        let r = rule(json!({"cycle": "weekly", "start_date": greg("2024-01-01")}));
        assert!(evaluate(&r, utc("2024-02-10T12:00:00Z"), UTC).is_match());
    }

    #[test]
    fn matches_uses_the_rules_zone_first() {
        let mut r =
            rule(json!({"cycle": "weekly", "wdays": ["friday"], "start_date": greg("2024-01-01")}));
        let now = utc("2024-03-16T03:00:00Z"); // Fri 23:00 in New York, Sat in Berlin
        assert!(!matches(&r, now, Berlin));
        r.timezone = Some(New_York);
        assert!(matches(&r, now, Berlin));
        assert_eq!(effective_zone(Some(Berlin), &r, UTC), Berlin);
        assert_eq!(effective_zone(None, &r, UTC), New_York);
        r.timezone = None;
        assert_eq!(effective_zone(None, &r, UTC), UTC);
    }

    #[test]
    fn clock_override_from_kvs() {
        let mut kvs = HashMap::new();
        assert!(clock_for(&kvs).now() > utc("2020-01-01T00:00:00Z"));
        kvs.insert(
            NOW_OVERRIDE_KEY.to_string(),
            json!("2024-03-10T07:30:00-04:00"),
        );
        assert_eq!(clock_for(&kvs).now(), utc("2024-03-10T11:30:00Z"));
        kvs.insert(NOW_OVERRIDE_KEY.to_string(), json!(1_710_070_200));
        assert_eq!(
            clock_for(&kvs).now(),
            Utc.timestamp_opt(1_710_070_200, 0).unwrap()
        );
        kvs.insert(NOW_OVERRIDE_KEY.to_string(), json!("yesterday"));
        assert!(clock_for(&kvs).now() > utc("2020-01-01T00:00:00Z"));
        assert_eq!(
            FixedClock(utc("2024-01-01T00:00:00Z")).now(),
            utc("2024-01-01T00:00:00Z")
        );
    }

    fn source() -> MemRules {
        let mut src = MemRules::default();
        let weekdays = json!({"cycle": "weekly", "wdays": ["monday","tuesday","wednesday","thursday","friday"],
            "time_window_start": 32400, "time_window_stop": 61200, "start_date": greg("2020-01-01")});
        src.rules.insert("office".into(), weekdays);
        src.rules.insert(
            "xmas".into(),
            json!({"cycle": "yearly", "month": 12, "days": [25], "start_date": greg("2000-01-01")}),
        );
        src.rules.insert(
            "newyear".into(),
            json!({"cycle": "yearly", "month": 1, "days": [1], "start_date": greg("2000-01-01")}),
        );
        src.rules
            .insert("broken".into(), json!({"cycle": "sometimes"}));
        src.rules
            .insert("always".into(), json!({"cycle": "daily", "enabled": true}));
        src.sets.insert(
            "holidays".into(),
            json!({"name": "Holidays", "temporal_rules": ["newyear", "xmas"]}),
        );
        src.sets.insert(
            "empty".into(),
            json!({"name": "Empty", "temporal_rules": []}),
        );
        src
    }

    #[test]
    fn routes_follow_kazoo_order_and_expand_sets() {
        let src = source();
        let routes = build_routes(
            &["holidays".to_string(), "office".to_string()],
            ["_", "office", "xmas"],
            Some("holidays"),
            &src,
        );
        let pairs: Vec<(&str, &str)> = routes
            .iter()
            .map(|r| (r.rule_id.as_str(), r.child_key.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("newyear", "holidays"),
                ("xmas", "holidays"),
                ("office", "office"),
                ("office", "office"),
                ("xmas", "xmas"),
                ("newyear", "rule_set"),
                ("xmas", "rule_set"),
            ]
        );
        // an empty set id stays a (missing) rule id, as in Kazoo
        let routes = build_routes(&["empty".to_string()], [], None, &src);
        assert_eq!(
            routes,
            vec![Route {
                rule_id: "empty".into(),
                child_key: "empty".into()
            }]
        );
    }

    #[test]
    fn first_match_wins_and_skips_bad_rules() {
        let src = source();
        let pick = |rules: &[&str], keys: &[&str], set: Option<&str>, at: &str| {
            let rules: Vec<String> = rules.iter().map(|s| s.to_string()).collect();
            let routes = build_routes(&rules, keys.iter().copied(), set, &src);
            first_match(&routes, &src, utc(at), None, UTC)
        };
        // Christmas 2024 is a Wednesday: the holiday set listed first wins over office hours
        assert_eq!(
            pick(&["holidays", "office"], &[], None, "2024-12-25T10:00:00Z"),
            Some("holidays".into())
        );
        assert_eq!(
            pick(&["office", "holidays"], &[], None, "2024-12-25T10:00:00Z"),
            Some("office".into())
        );
        assert_eq!(
            pick(&[], &["office"], Some("holidays"), "2024-12-25T20:00:00Z"),
            Some("rule_set".into())
        );
        assert_eq!(
            pick(&[], &["office"], Some("holidays"), "2024-12-24T20:00:00Z"),
            None
        );
        // missing and malformed rules are skipped, not fatal
        assert_eq!(
            pick(
                &["nope", "broken", "always"],
                &[],
                None,
                "2024-12-24T20:00:00Z"
            ),
            Some("always".into())
        );
        // the route's zone overrides: 09:30 UTC is 04:30 in New York
        let routes = build_routes(&["office".to_string()], [], None, &src);
        assert_eq!(
            first_match(&routes, &src, utc("2024-12-24T09:30:00Z"), None, UTC),
            Some("office".into())
        );
        assert_eq!(
            first_match(
                &routes,
                &src,
                utc("2024-12-24T09:30:00Z"),
                Some(New_York),
                UTC
            ),
            None
        );
    }
}

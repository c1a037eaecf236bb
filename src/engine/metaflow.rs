//! Metaflows: DTMF codes (`*` + digits) that trigger actions in the middle of a call — transfer,
//! hold, record — while the main flow keeps running (Kazoo's konami, plus the callflow's own
//! `metaflow` key, which Kazoo's schema has but never reads).
//!
//! # Sources and precedence
//! The callflow's `metaflow`, the calling user's and device's `metaflows`, and the account's
//! (`/v2/accounts/{id}/metaflows`), in that order of precedence: for `binding_digit`,
//! `digit_timeout` and `listen_on` the first source that sets one wins; `numbers` and `patterns`
//! are merged, a key of a higher source replacing the same key of a lower one. Patterns are tried
//! in the order: higher source first, then the order they were written.
//!
//! # Detection (as Kazoo)
//! The binding digit (default `*`) arms collection; each further digit restarts `digit_timeout`
//! (default 800 ms); when it fires, an exact `numbers` key wins over `patterns` (first regex that
//! matches, anchored by the writer). A pattern match gives the node `data.collected` (the digits)
//! and `data.captures` (the capture groups); every match gives `data.dtmf_leg` (`self`/`peer`).
//!
//! # Sharing digits with the main flow (the rule)
//! While metaflows are active, the binding digit always starts a code: it and the digits that
//! follow it within `digit_timeout` are taken from the main flow (a `menu` or `collect_dtmf` does
//! not see them). When the code matches nothing, the binding digit and the code are given back to
//! the main flow's digit buffer, so a menu option `*` still works. Digits that do not follow the
//! binding digit are the main flow's alone.
//!
//! # Legs
//! `listen_on` `self` reads the caller's DTMF events. `peer` and `both` also listen to the far end
//! while bridged: each bridge leg carries `bind_digit_action` (run on answer), which makes
//! FreeSWITCH match `<binding digit><digits>` on that leg and queue a CHANNEL_DATA event with
//! `digits: <code>` to our channel; `divert_events on` (sent at set-up) delivers it to this
//! socket. Digits of the peer are ignored with `listen_on: self`.
//!
//! Whoever pressed acts on the other party (Kazoo's `dtmf_leg` rule, see
//! [`crate::modules::metaflow`]): a far end's transfer, hold or park code acts on the caller,
//! and `leg: self` of its `play`/`say`/`tts` is the far end; children inherit `dtmf_leg`.
//!
//! # Running (and the main flow)
//! A complete code runs from inside whatever the main flow is waiting on (an app's completion,
//! digits, an HTTP request), through [`crate::engine::metaflow_runner`], one code at a time; the
//! main flow's node, stack and pending app are untouched and it goes on waiting afterwards.
//! Metaflow modules act through `api` commands only; none flushes the channel's queued
//! commands (`uuid_break` is sent without `all`), so the main flow's pending app always
//! completes. Exceptions, by design: a `callflow` node cuts the current module short and the
//! executor branches (resuming at the interrupted node's `_`); a blind transfer of this leg
//! releases the call (no hangup, no further children); a hangup of this leg ends the flow. A
//! code not complete when the call ends never runs. `hold`'s unhold key is a key only while a
//! peer is held (disarmed when the bridge ends) and no code is being collected.

use crate::callflow::model::Node;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which legs' digits trigger metaflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenOn {
    /// The caller only (Kazoo's default).
    SelfLeg,
    /// The far end only.
    Peer,
    /// Both.
    Both,
}

impl ListenOn {
    fn parse(value: &str) -> Option<ListenOn> {
        match value {
            "self" => Some(ListenOn::SelfLeg),
            "peer" => Some(ListenOn::Peer),
            "both" => Some(ListenOn::Both),
            _ => None,
        }
    }

    /// Whether the caller's own digits count.
    pub fn hears_self(self) -> bool {
        matches!(self, ListenOn::SelfLeg | ListenOn::Both)
    }

    /// Whether the far end's digits count.
    pub fn hears_peer(self) -> bool {
        matches!(self, ListenOn::Peer | ListenOn::Both)
    }
}

/// The merged metaflow settings of one call.
#[derive(Debug, Clone)]
pub struct MetaflowConfig {
    /// The digit that arms collection.
    pub binding_digit: char,
    /// Silence that ends a code.
    pub digit_timeout: Duration,
    /// Which legs are heard.
    pub listen_on: ListenOn,
    /// Exact codes (without the binding digit).
    pub numbers: BTreeMap<String, Node>,
    /// Regexes over the code, in precedence order.
    pub patterns: Vec<(Regex, Node)>,
}

/// Kazoo's default digit timeout.
pub const DEFAULT_DIGIT_TIMEOUT: Duration = Duration::from_millis(800);

/// Largest code accepted (a stuck key must not grow a code without limit).
pub const MAX_CODE_LEN: usize = 32;

impl MetaflowConfig {
    /// Merges metaflow objects given from highest to lowest precedence. `None` when no source
    /// defines any code.
    pub fn merge(sources: &[&Value]) -> Option<MetaflowConfig> {
        let mut binding_digit = None;
        let mut digit_timeout = None;
        let mut listen_on = None;
        let mut numbers: BTreeMap<String, Node> = BTreeMap::new();
        let mut patterns: Vec<(Regex, Node)> = Vec::new();
        let mut seen_patterns: Vec<String> = Vec::new();
        for source in sources {
            let Some(object) = source.as_object() else {
                continue;
            };
            if binding_digit.is_none() {
                binding_digit = object
                    .get("binding_digit")
                    .and_then(Value::as_str)
                    .and_then(|s| s.chars().next())
                    .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#');
            }
            if digit_timeout.is_none() {
                digit_timeout = object
                    .get("digit_timeout")
                    .and_then(Value::as_u64)
                    .map(|ms| Duration::from_millis(ms.clamp(100, 10_000)));
            }
            if listen_on.is_none() {
                listen_on = object
                    .get("listen_on")
                    .and_then(Value::as_str)
                    .and_then(ListenOn::parse);
            }
            for (code, node) in object
                .get("numbers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if numbers.contains_key(code) {
                    continue;
                }
                if let Ok(node) = Node::from_value(node) {
                    numbers.insert(code.clone(), node);
                }
            }
            for (pattern, node) in object
                .get("patterns")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if seen_patterns.contains(pattern) {
                    continue;
                }
                seen_patterns.push(pattern.clone());
                match (Regex::new(pattern), Node::from_value(node)) {
                    (Ok(regex), Ok(node)) => patterns.push((regex, node)),
                    _ => {
                        tracing::warn!(%pattern, "metaflow pattern ignored (invalid regex or node)")
                    }
                }
            }
        }
        if numbers.is_empty() && patterns.is_empty() {
            return None;
        }
        Some(MetaflowConfig {
            binding_digit: binding_digit.unwrap_or('*'),
            digit_timeout: digit_timeout.unwrap_or(DEFAULT_DIGIT_TIMEOUT),
            listen_on: listen_on.unwrap_or(ListenOn::SelfLeg),
            numbers,
            patterns,
        })
    }

    /// The node a code triggers, with the data Kazoo adds (`collected`, `captures`, `dtmf_leg`).
    pub fn lookup(&self, code: &str, leg: &str) -> Option<Node> {
        if let Some(node) = self.numbers.get(code) {
            let mut node = node.clone();
            add_data(&mut node, "dtmf_leg", Value::String(leg.into()));
            return Some(node);
        }
        self.patterns.iter().find_map(|(regex, node)| {
            let caps = regex.captures(code)?;
            let mut node = node.clone();
            let captures: Vec<Value> = caps
                .iter()
                .skip(1)
                .flatten()
                .map(|m| Value::String(m.as_str().to_string()))
                .collect();
            add_data(&mut node, "collected", Value::String(code.into()));
            add_data(&mut node, "captures", Value::Array(captures));
            add_data(&mut node, "dtmf_leg", Value::String(leg.into()));
            Some(node)
        })
    }

    /// The `bind_digit_action` a bridge leg runs on answer so the far end's codes reach us
    /// (its commas make the dial string use FreeSWITCH's `^^;` variable separator).
    pub fn peer_binding(&self) -> Vec<(String, String)> {
        let binding = self.binding_digit;
        vec![
            (
                "execute_on_answer".into(),
                format!(
                    "bind_digit_action callflowd_metaflow,~^[{binding}][0-9*#]+$,metaflow,peer,self,peer"
                ),
            ),
            (
                "bind_digit_digit_timeout".into(),
                self.digit_timeout.as_millis().to_string(),
            ),
        ]
    }
}

fn add_data(node: &mut Node, key: &str, value: Value) {
    if !node.data.is_object() {
        node.data = Value::Object(Map::new());
    }
    if let Some(object) = node.data.as_object_mut() {
        object.insert(key.into(), value);
    }
}

/// What became of one digit the caller pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitFate {
    /// Taken for a metaflow code.
    Taken,
    /// Belongs to the main flow.
    Main,
}

/// The caller-leg code detector: a small state machine driven by digits and the clock.
#[derive(Debug, Clone)]
pub struct Detector {
    binding: char,
    timeout: Duration,
    armed: Option<(String, Instant)>,
}

impl Detector {
    /// A detector for `binding` + digits with `timeout` between digits.
    pub fn new(binding: char, timeout: Duration) -> Self {
        Detector {
            binding,
            timeout,
            armed: None,
        }
    }

    /// Feeds one digit.
    pub fn on_digit(&mut self, digit: char, now: Instant) -> DigitFate {
        match &mut self.armed {
            Some((code, deadline)) => {
                if code.len() < MAX_CODE_LEN {
                    code.push(digit);
                }
                *deadline = now + self.timeout;
                DigitFate::Taken
            }
            None if digit == self.binding => {
                self.armed = Some((String::new(), now + self.timeout));
                DigitFate::Taken
            }
            None => DigitFate::Main,
        }
    }

    /// When the pending code completes, if one is being collected.
    pub fn deadline(&self) -> Option<Instant> {
        self.armed.as_ref().map(|(_, d)| *d)
    }

    /// Returns the finished code once its timeout passed (the binding digit alone gives `""`).
    pub fn poll(&mut self, now: Instant) -> Option<String> {
        match &self.armed {
            Some((_, deadline)) if now >= *deadline => self.armed.take().map(|(code, _)| code),
            _ => None,
        }
    }

    /// Drops the code being collected, if any.
    pub fn cancel(&mut self) {
        self.armed = None;
    }

    /// The binding digit (to give an unmatched code back to the main flow).
    pub fn binding(&self) -> char {
        self.binding
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detector_arms_collects_and_times_out() {
        let t0 = Instant::now();
        let mut d = Detector::new('*', Duration::from_millis(800));
        assert_eq!(d.on_digit('5', t0), DigitFate::Main);
        assert_eq!(d.on_digit('*', t0), DigitFate::Taken);
        assert_eq!(
            d.on_digit('2', t0 + Duration::from_millis(500)),
            DigitFate::Taken
        );
        assert_eq!(
            d.on_digit('1', t0 + Duration::from_millis(1200)),
            DigitFate::Taken
        );
        assert_eq!(
            d.poll(t0 + Duration::from_millis(1500)),
            None,
            "each digit restarts the timer"
        );
        assert_eq!(
            d.poll(t0 + Duration::from_millis(2000)).as_deref(),
            Some("21")
        );
        assert_eq!(d.deadline(), None);
        assert_eq!(
            d.on_digit('3', t0 + Duration::from_millis(2100)),
            DigitFate::Main
        );
    }

    #[test]
    fn merge_precedence_and_lookup() {
        let callflow =
            json!({"binding_digit": "#", "numbers": {"2": {"module": "hangup", "data": {}}}});
        let user = json!({"digit_timeout": 1500, "listen_on": "both",
            "numbers": {"2": {"module": "break", "data": {}}, "4": {"module": "hold", "data": {}}},
            "patterns": {"^3(\\d+)$": {"module": "transfer", "data": {}}}});
        let account =
            json!({"binding_digit": "*", "numbers": {"9": {"module": "break", "data": {}}}});
        let config = MetaflowConfig::merge(&[&callflow, &user, &account]).unwrap();
        assert_eq!(config.binding_digit, '#');
        assert_eq!(config.digit_timeout, Duration::from_millis(1500));
        assert_eq!(config.listen_on, ListenOn::Both);
        assert_eq!(config.numbers["2"].module, "hangup", "higher source wins");
        assert_eq!(config.numbers.len(), 3);
        let node = config.lookup("3101", "self").unwrap();
        assert_eq!(node.module, "transfer");
        assert_eq!(node.data["captures"], json!(["101"]));
        assert_eq!(node.data["collected"], json!("3101"));
        let exact = config.lookup("4", "peer").unwrap();
        assert_eq!(exact.data["dtmf_leg"], json!("peer"));
        assert!(config.lookup("77", "self").is_none());
        assert!(MetaflowConfig::merge(&[&json!({"binding_digit": "*"})]).is_none());
    }
}

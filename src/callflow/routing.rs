//! The in-memory routing index: dialled number -> callflow, with Kazoo's precedence.
//!
//! Kazoo (`cf_flow.erl`) looks a number up in three steps, and so do we:
//! 1. an exact entry of some callflow's `numbers`;
//! 2. `patterns`, unanchored unless written with `^`/`$`; the score of a match is the length of its
//!    longest capture group (the whole match when the regex has no groups); a strictly longer score
//!    wins, and ties go to the pattern that sorts last (Kazoo walks its view backwards);
//! 3. the account's `no_match` callflow, for all-digit numbers only (optional leading `+`).
//!
//! The store updates this index on every committed write, so the very next call sees the change,
//! and the engine never touches the database to route a call. Patterns are compiled once at write
//! time and grouped into `RegexSet` chunks so one lookup costs one pass per chunk instead of one
//! regex per pattern.

use regex::{Regex, RegexSet};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// Patterns per `RegexSet`: a write rebuilds one chunk only, a lookup scans `n / CHUNK` sets.
const PATTERN_CHUNK: usize = 128;

/// The literal Kazoo reserves for the catch-all callflow.
pub const NO_MATCH: &str = "no_match";

/// Why a callflow was chosen; the engine logs it and modules read the captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchKind {
    /// An entry of `numbers`.
    Number,
    /// A regex of `patterns` (the one that won).
    Pattern(String),
    /// The account's `no_match` callflow.
    NoMatch,
}

/// The result of routing one dialled number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Id of the callflow document to run.
    pub callflow_id: Arc<str>,
    /// How it matched.
    pub kind: MatchKind,
    /// Kazoo's `cf_capture_group`: the longest capture of the winning pattern (or the whole match).
    pub capture_group: Option<String>,
    /// Kazoo's `cf_capture_groups`: the non-empty named groups of the winning pattern.
    pub named_captures: BTreeMap<String, String>,
}

struct PatternEntry {
    source: String,
    regex: Regex,
    callflow_id: Arc<str>,
}

struct PatternChunk {
    entries: Vec<PatternEntry>,
    set: RegexSet,
}

impl PatternChunk {
    fn rebuild(entries: Vec<PatternEntry>) -> Self {
        // Every source compiled alone already, so the set cannot fail except on size limits;
        // an empty set is the safe fallback (lookups then simply see no match in this chunk).
        let set = RegexSet::new(entries.iter().map(|e| e.source.as_str()))
            .unwrap_or_else(|_| RegexSet::empty());
        let set = if set.len() == entries.len() {
            set
        } else {
            RegexSet::empty()
        };
        Self { entries, set }
    }
}

/// Patterns that share one literal prefix, in `RegexSet` chunks.
#[derive(Default)]
struct PatternGroup {
    chunks: Vec<PatternChunk>,
}

impl PatternGroup {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn remove_callflow(&mut self, id: &str) {
        let chunks = std::mem::take(&mut self.chunks);
        for chunk in chunks {
            let before = chunk.entries.len();
            let kept: Vec<PatternEntry> = chunk
                .entries
                .into_iter()
                .filter(|e| &*e.callflow_id != id)
                .collect();
            if kept.is_empty() {
                continue;
            }
            if kept.len() == before {
                self.chunks.push(PatternChunk {
                    entries: kept,
                    set: chunk.set,
                });
            } else {
                self.chunks.push(PatternChunk::rebuild(kept));
            }
        }
    }

    fn add(&mut self, mut fresh: Vec<PatternEntry>) {
        while !fresh.is_empty() {
            let last_has_room = self
                .chunks
                .last()
                .is_some_and(|c| c.entries.len() < PATTERN_CHUNK);
            if !last_has_room {
                self.chunks.push(PatternChunk::rebuild(Vec::new()));
            }
            let Some(last) = self.chunks.pop() else {
                break;
            };
            let mut entries = last.entries;
            let room = PATTERN_CHUNK - entries.len();
            let take = room.min(fresh.len());
            entries.extend(fresh.drain(..take));
            self.chunks.push(PatternChunk::rebuild(entries));
        }
    }
}

/// Longest literal prefix kept for bucketing (bytes).
const MAX_PREFIX: usize = 16;

/// The literal text every match of an anchored pattern starts with (`^\*3(\d+)$` -> `*3`), so a
/// lookup only runs the patterns whose prefix the dialled number has. Unanchored, multi-line,
/// case-insensitive or alternated patterns give `""` (always tried).
pub fn anchored_prefix(source: &str) -> String {
    use regex_syntax::hir::{HirKind, Look};
    let Ok(hir) = regex_syntax::Parser::new().parse(source) else {
        return String::new();
    };
    let HirKind::Concat(parts) = hir.kind() else {
        return String::new();
    };
    let mut parts = parts.iter();
    if !matches!(
        parts.next().map(|h| h.kind()),
        Some(HirKind::Look(Look::Start))
    ) {
        return String::new();
    }
    let mut prefix: Vec<u8> = Vec::new();
    for part in parts {
        match part.kind() {
            HirKind::Literal(literal) => prefix.extend_from_slice(&literal.0),
            _ => break,
        }
    }
    prefix.truncate(MAX_PREFIX);
    // Never cut a multi-byte character in half.
    while !prefix.is_empty() && std::str::from_utf8(&prefix).is_err() {
        prefix.pop();
    }
    String::from_utf8(prefix).unwrap_or_default()
}

#[derive(Default)]
struct AccountRoutes {
    numbers: HashMap<Box<str>, Arc<str>>,
    /// Patterns bucketed by their anchored literal prefix (`""`: tried for every number).
    patterns: HashMap<String, PatternGroup>,
    /// The longest prefix in `patterns` (bounds the prefixes a lookup tries).
    longest_prefix: usize,
    /// pattern source -> callflow id, for uniqueness checks and removal.
    pattern_owner: HashMap<String, Arc<str>>,
    /// callflow id -> what it registered, so an update can remove the old entries.
    by_callflow: HashMap<Arc<str>, (Vec<String>, Vec<String>)>,
}

impl AccountRoutes {
    fn remove_callflow(&mut self, id: &str) {
        let Some((numbers, patterns)) = self.by_callflow.remove(id) else {
            return;
        };
        for number in numbers {
            if self
                .numbers
                .get(number.as_str())
                .is_some_and(|owner| &**owner == id)
            {
                self.numbers.remove(number.as_str());
            }
        }
        let mut buckets: Vec<String> = Vec::new();
        for pattern in &patterns {
            if self
                .pattern_owner
                .get(pattern)
                .is_some_and(|owner| &**owner == id)
            {
                self.pattern_owner.remove(pattern);
            }
            let prefix = anchored_prefix(pattern);
            if !buckets.contains(&prefix) {
                buckets.push(prefix);
            }
        }
        for prefix in buckets {
            if let Some(group) = self.patterns.get_mut(&prefix) {
                group.remove_callflow(id);
                if group.is_empty() {
                    self.patterns.remove(&prefix);
                }
            }
        }
    }

    fn add_callflow(&mut self, id: Arc<str>, numbers: Vec<String>, patterns: Vec<String>) {
        for number in &numbers {
            self.numbers
                .insert(number.clone().into_boxed_str(), id.clone());
        }
        let mut fresh: HashMap<String, Vec<PatternEntry>> = HashMap::new();
        for source in &patterns {
            // Invalid regexes are rejected by the API; Kazoo drops them at lookup, so do we.
            if let Ok(regex) = Regex::new(source) {
                self.pattern_owner.insert(source.clone(), id.clone());
                fresh
                    .entry(anchored_prefix(source))
                    .or_default()
                    .push(PatternEntry {
                        source: source.clone(),
                        regex,
                        callflow_id: id.clone(),
                    });
            }
        }
        for (prefix, entries) in fresh {
            self.longest_prefix = self.longest_prefix.max(prefix.len());
            self.patterns.entry(prefix).or_default().add(entries);
        }
        self.by_callflow.insert(id, (numbers, patterns));
    }

    fn lookup(&self, number: &str) -> Option<RouteMatch> {
        if let Some(id) = self.numbers.get(number) {
            return Some(RouteMatch {
                callflow_id: id.clone(),
                kind: MatchKind::Number,
                capture_group: None,
                named_captures: BTreeMap::new(),
            });
        }
        if let Some(found) = self.lookup_pattern(number) {
            return Some(found);
        }
        if is_all_digits(number) {
            if let Some(id) = self.numbers.get(NO_MATCH) {
                return Some(RouteMatch {
                    callflow_id: id.clone(),
                    kind: MatchKind::NoMatch,
                    capture_group: None,
                    named_captures: BTreeMap::new(),
                });
            }
        }
        None
    }

    fn lookup_pattern(&self, number: &str) -> Option<RouteMatch> {
        let mut best: Option<(usize, &PatternEntry, regex::Captures<'_>)> = None;
        let prefixes = (0..=self.longest_prefix.min(number.len()))
            .filter(|k| number.is_char_boundary(*k))
            .filter_map(|k| self.patterns.get(&number[..k]));
        for chunk in prefixes.flat_map(|group| group.chunks.iter()) {
            if chunk.set.is_empty() {
                continue;
            }
            for index in chunk.set.matches(number).iter() {
                let Some(entry) = chunk.entries.get(index) else {
                    continue;
                };
                let Some(caps) = entry.regex.captures(number) else {
                    continue;
                };
                let score = pattern_score(&caps);
                let wins = match &best {
                    None => true,
                    Some((best_score, best_entry, _)) => {
                        score > *best_score
                            || (score == *best_score && entry.source > best_entry.source)
                    }
                };
                if wins {
                    best = Some((score, entry, caps));
                }
            }
        }
        let (_, entry, caps) = best?;
        let capture_group = longest_capture(&caps).map(str::to_string);
        let named_captures = entry
            .regex
            .capture_names()
            .flatten()
            .filter_map(|name| {
                caps.name(name)
                    .filter(|m| !m.as_str().is_empty())
                    .map(|m| (name.to_string(), m.as_str().to_string()))
            })
            .collect();
        Some(RouteMatch {
            callflow_id: entry.callflow_id.clone(),
            kind: MatchKind::Pattern(entry.source.clone()),
            capture_group,
            named_captures,
        })
    }
}

/// Kazoo's score: the longest capture group when the regex has groups, else the whole match.
fn pattern_score(caps: &regex::Captures<'_>) -> usize {
    longest_capture(caps).map_or(0, str::len)
}

fn longest_capture<'h>(caps: &regex::Captures<'h>) -> Option<&'h str> {
    if caps.len() > 1 {
        caps.iter()
            .skip(1)
            .flatten()
            .map(|m| m.as_str())
            .fold(None, |best: Option<&str>, s| match best {
                Some(b) if b.len() >= s.len() => Some(b),
                _ => Some(s),
            })
    } else {
        caps.get(0).map(|m| m.as_str())
    }
}

/// Kazoo only falls back to `no_match` for numbers made of digits (an optional leading `+`).
pub fn is_all_digits(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Per-account routing tables, shared by the store (writer) and the engine (reader).
#[derive(Default)]
pub struct RoutingIndex {
    accounts: RwLock<HashMap<String, Arc<RwLock<AccountRoutes>>>>,
}

impl RoutingIndex {
    /// An empty index; the store fills it from disk at start-up.
    pub fn new() -> Self {
        Self::default()
    }

    fn account(&self, account_id: &str) -> Option<Arc<RwLock<AccountRoutes>>> {
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        accounts.get(account_id).cloned()
    }

    fn account_or_insert(&self, account_id: &str) -> Arc<RwLock<AccountRoutes>> {
        if let Some(found) = self.account(account_id) {
            return found;
        }
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        accounts.entry(account_id.to_string()).or_default().clone()
    }

    /// Replaces whatever `callflow_id` registered before with these numbers and patterns.
    pub fn set_callflow(
        &self,
        account_id: &str,
        callflow_id: &str,
        numbers: Vec<String>,
        patterns: Vec<String>,
    ) {
        let routes = self.account_or_insert(account_id);
        let mut routes = routes.write().unwrap_or_else(|e| e.into_inner());
        routes.remove_callflow(callflow_id);
        routes.add_callflow(Arc::from(callflow_id), numbers, patterns);
    }

    /// Forgets a deleted callflow.
    pub fn remove_callflow(&self, account_id: &str, callflow_id: &str) {
        if let Some(routes) = self.account(account_id) {
            let mut routes = routes.write().unwrap_or_else(|e| e.into_inner());
            routes.remove_callflow(callflow_id);
        }
    }

    /// Routes a dialled number with Kazoo's precedence (number, pattern, no_match).
    pub fn lookup(&self, account_id: &str, number: &str) -> Option<RouteMatch> {
        let routes = self.account(account_id)?;
        let routes = routes.read().unwrap_or_else(|e| e.into_inner());
        routes.lookup(number)
    }

    /// The callflow that owns an exact number, for uniqueness checks.
    pub fn number_owner(&self, account_id: &str, number: &str) -> Option<Arc<str>> {
        let routes = self.account(account_id)?;
        let routes = routes.read().unwrap_or_else(|e| e.into_inner());
        routes.numbers.get(number).cloned()
    }

    /// The callflow that owns a pattern (exact string), for uniqueness checks.
    pub fn pattern_owner(&self, account_id: &str, pattern: &str) -> Option<Arc<str>> {
        let routes = self.account(account_id)?;
        let routes = routes.read().unwrap_or_else(|e| e.into_inner());
        routes.pattern_owner.get(pattern).cloned()
    }

    /// How many numbers and patterns an account has (for metrics and tests).
    pub fn counts(&self, account_id: &str) -> (usize, usize) {
        self.account(account_id).map_or((0, 0), |routes| {
            let routes = routes.read().unwrap_or_else(|e| e.into_inner());
            (routes.numbers.len(), routes.pattern_owner.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn exact_number_beats_pattern() {
        let index = RoutingIndex::new();
        index.set_callflow("a", "cf1", s(&["1000"]), vec![]);
        index.set_callflow("a", "cf2", vec![], s(&["^1\\d+$"]));
        let m = index.lookup("a", "1000").unwrap();
        assert_eq!(&*m.callflow_id, "cf1");
        assert_eq!(m.kind, MatchKind::Number);
        let m = index.lookup("a", "1001").unwrap();
        assert_eq!(&*m.callflow_id, "cf2");
    }

    #[test]
    fn longest_capture_wins_and_ties_go_to_last_sorted() {
        let index = RoutingIndex::new();
        index.set_callflow("a", "short", vec![], s(&["^\\*(\\d)"]));
        index.set_callflow("a", "long", vec![], s(&["^\\*(\\d+)$"]));
        let m = index.lookup("a", "*123").unwrap();
        assert_eq!(&*m.callflow_id, "long");
        assert_eq!(m.capture_group.as_deref(), Some("123"));
        // Two patterns with the same score: the one that sorts last wins.
        index.set_callflow("a", "x", vec![], s(&["^9(\\d{3})$"]));
        index.set_callflow("a", "y", vec![], s(&["^9(\\d\\d\\d)$"]));
        let m = index.lookup("a", "9123").unwrap();
        let expected = if "^9(\\d{3})$" > "^9(\\d\\d\\d)$" {
            "x"
        } else {
            "y"
        };
        assert_eq!(&*m.callflow_id, expected);
    }

    #[test]
    fn unanchored_patterns_and_named_captures() {
        let index = RoutingIndex::new();
        index.set_callflow("a", "cf", vec![], s(&["(?P<ext>2\\d\\d)"]));
        let m = index.lookup("a", "55201").unwrap();
        assert_eq!(m.capture_group.as_deref(), Some("201"));
        assert_eq!(m.named_captures.get("ext").map(String::as_str), Some("201"));
    }

    #[test]
    fn no_match_only_for_digits() {
        let index = RoutingIndex::new();
        index.set_callflow("a", "nm", s(&[NO_MATCH]), vec![]);
        assert_eq!(
            index.lookup("a", "+15551234").unwrap().kind,
            MatchKind::NoMatch
        );
        assert!(index.lookup("a", "sip:foo").is_none());
        assert!(index.lookup("b", "1000").is_none());
    }

    #[test]
    fn update_and_remove_drop_old_entries() {
        let index = RoutingIndex::new();
        index.set_callflow("a", "cf", s(&["1000"]), s(&["^5"]));
        index.set_callflow("a", "cf", s(&["2000"]), vec![]);
        assert!(index.lookup("a", "1000").is_none());
        assert!(index.lookup("a", "555").is_none());
        assert!(index.lookup("a", "2000").is_some());
        index.remove_callflow("a", "cf");
        assert!(index.lookup("a", "2000").is_none());
        assert_eq!(index.counts("a"), (0, 0));
    }

    #[test]
    fn literal_prefixes_bucket_anchored_patterns_only() {
        assert_eq!(anchored_prefix("^\\*3([0-9]+)$"), "*3");
        assert_eq!(anchored_prefix("^\\+1415(\\d{7})$"), "+1415");
        assert_eq!(anchored_prefix("^(\\d+)$"), "");
        assert_eq!(anchored_prefix("2\\d\\d"), "", "unanchored");
        assert_eq!(anchored_prefix("^12|34"), "", "top-level alternation");
        assert_eq!(anchored_prefix("(?i)^ab"), "", "case-insensitive");
        assert_eq!(anchored_prefix("(?m)^12"), "", "multi-line");
        assert_eq!(anchored_prefix("^12345678901234567890"), "1234567890123456");
        assert_eq!(anchored_prefix("^é"), "é");
        // Routing still finds bucketed and unbucketed patterns together.
        let index = RoutingIndex::new();
        index.set_callflow("a", "star", vec![], s(&["^\\*3(\\d+)$"]));
        index.set_callflow("a", "any", vec![], s(&["^(\\*\\d)"]));
        let m = index.lookup("a", "*3101").unwrap();
        assert_eq!(&*m.callflow_id, "star");
        assert_eq!(m.capture_group.as_deref(), Some("101"));
        assert_eq!(&*index.lookup("a", "*45").unwrap().callflow_id, "any");
        index.remove_callflow("a", "star");
        assert_eq!(&*index.lookup("a", "*3101").unwrap().callflow_id, "any");
    }

    #[test]
    fn many_patterns_span_chunks() {
        let index = RoutingIndex::new();
        for i in 0..1000 {
            index.set_callflow("a", &format!("cf{i}"), vec![], vec![format!("^7{i:04}$")]);
        }
        let m = index.lookup("a", "70999").unwrap();
        assert_eq!(&*m.callflow_id, "cf999");
        index.remove_callflow("a", "cf999");
        assert!(index.lookup("a", "70999").is_none());
        assert_eq!(&*index.lookup("a", "70500").unwrap().callflow_id, "cf500");
    }
}

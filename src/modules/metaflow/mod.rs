//! Metaflow modules: actions a DTMF code triggers in the middle of a call (Kazoo's konami
//! modules), one file each, registered once in [`REGISTRY`].
//!
//! They run while the main flow is waiting on an app (a bridge, a playback), so they act through
//! `api` commands that take effect at once (`uuid_transfer`, `uuid_hold`, `uuid_record`,
//! `uuid_broadcast`, `uuid_break`, `uuid_kill`) instead of queued `execute`s, which would wait
//! behind the running app. A module returns the child key to follow (`Continue`) or `Stop`.
//!
//! As in Kazoo, the leg that pressed the code (`data.dtmf_leg`: `self` = this channel, `peer` =
//! the far end heard through `listen_on`) acts on the other one: the transferee, the held or
//! parked party is the presser's [`Parties::other`], and a `leg` of `play`/`say`/`tts` is seen
//! from the presser ([`leg_from_here`]).

use crate::callflow::errors::{FieldErrors, join_path};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

pub mod breakout;
pub mod callflow;
pub mod hangup;
pub mod hold;
pub mod hold_control;
pub mod intercept;
pub mod park;
pub mod play;
pub mod record_call;
pub mod resume;
pub mod say;
pub mod transfer;
pub mod tts;

/// What a metaflow node asks for next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaNext {
    /// Follow `children[key]`, else `children["_"]`, else end.
    Continue(String),
    /// End the metaflow; the main flow goes on.
    Stop,
}

impl MetaNext {
    /// The default child.
    pub fn default_child() -> Self {
        MetaNext::Continue("_".into())
    }
}

/// The future a metaflow module returns once type-erased.
pub type MetaFuture<'a> = Pin<Box<dyn Future<Output = Result<MetaNext, CallEnded>> + Send + 'a>>;

/// One metaflow module, implemented by a unit struct in its own file.
pub trait MetaflowModule: 'static {
    /// The `module` name used in metaflow JSON.
    const NAME: &'static str;
    /// The node's `data` (plus `collected`, `captures`, `dtmf_leg` added at detection).
    type Data: DeserializeOwned + Send;
    /// JSON schema of `data`.
    fn schema() -> Value;
    /// Acts on the call.
    fn run(
        data: Self::Data,
        call: &mut Call,
    ) -> impl Future<Output = Result<MetaNext, CallEnded>> + Send;
}

/// A registered metaflow module.
pub struct MetaflowEntry {
    /// Module name.
    pub name: &'static str,
    /// Data schema.
    pub schema: Value,
    validator: Option<jsonschema::Validator>,
    run: for<'a> fn(&'a Node, &'a mut Call) -> MetaFuture<'a>,
}

impl MetaflowEntry {
    /// Runs the module on a node.
    pub fn run<'a>(&self, node: &'a Node, call: &'a mut Call) -> MetaFuture<'a> {
        (self.run)(node, call)
    }
}

fn run_erased<'a, M: MetaflowModule>(node: &'a Node, call: &'a mut Call) -> MetaFuture<'a> {
    Box::pin(async move {
        match M::Data::deserialize(&node.data) {
            Ok(data) => M::run(data, call).await,
            Err(error) => {
                tracing::warn!(module = M::NAME, %error, "metaflow data does not parse; stopping");
                Ok(MetaNext::Stop)
            }
        }
    })
}

use serde::Deserialize as _;

fn entry<M: MetaflowModule>() -> MetaflowEntry {
    let mut schema = M::schema();
    // Detection adds these; accept them in stored data too.
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props
            .entry("collected")
            .or_insert(json!({"type": "string"}));
        props
            .entry("captures")
            .or_insert(json!({"type": "array", "items": {"type": "string"}}));
        props.entry("dtmf_leg").or_insert(json!({"type": "string"}));
    }
    let validator = jsonschema::options()
        .should_validate_formats(false)
        .build(&schema)
        .map_err(
            |e| tracing::error!(module = M::NAME, error = %e, "metaflow schema does not compile"),
        )
        .ok();
    MetaflowEntry {
        name: M::NAME,
        schema,
        validator,
        run: run_erased::<M>,
    }
}

/// Every metaflow module, by name.
pub static REGISTRY: LazyLock<BTreeMap<&'static str, MetaflowEntry>> = LazyLock::new(|| {
    [
        entry::<breakout::Break>(),
        entry::<callflow::Callflow>(),
        entry::<hangup::Hangup>(),
        entry::<hold::Hold>(),
        entry::<hold_control::HoldControl>(),
        entry::<intercept::Intercept>(),
        entry::<park::Park>(),
        entry::<play::Play>(),
        entry::<record_call::RecordCall>(),
        entry::<resume::Resume>(),
        entry::<say::Say>(),
        entry::<transfer::Transfer>(),
        entry::<tts::Tts>(),
    ]
    .into_iter()
    .map(|e| (e.name, e))
    .collect()
});

/// Looks a metaflow module up.
pub fn get(name: &str) -> Option<&'static MetaflowEntry> {
    REGISTRY.get(name)
}

/// Validates a metaflows object (`binding_digit`, `digit_timeout`, `listen_on`, `numbers`,
/// `patterns`; each node a registered metaflow module with valid data, nested children
/// included), Kazoo-shaped errors under `path`. Used for a callflow's `metaflow`, devices' and
/// users' `metaflows`, and the account's.
pub fn validate_metaflows(value: &mut Value, path: &str, errors: &mut FieldErrors) {
    let Some(object) = value.as_object_mut() else {
        errors.add(
            path,
            "type",
            json!({"message": "Value did not match type(s): object", "target": "object"}),
        );
        return;
    };
    if let Some(digit) = object.get("binding_digit") {
        let ok = digit.as_str().is_some_and(|d| {
            d.len() == 1
                && d.chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        });
        if !ok {
            errors.add(
                join_path(path, "binding_digit"),
                "enum",
                json!({"message": "Value not found in enumerated list of values",
                       "target": ["1","2","3","4","5","6","7","8","9","0","*","#"], "value": digit}),
            );
        }
    }
    if let Some(timeout) = object.get("digit_timeout") {
        if !timeout.is_u64() {
            errors.add(
                join_path(path, "digit_timeout"),
                "type",
                json!({"message": "Value did not match type(s): integer", "target": "integer", "value": timeout}),
            );
        }
    }
    if let Some(listen) = object.get("listen_on") {
        if !matches!(listen.as_str(), Some("self" | "peer" | "both")) {
            errors.add(
                join_path(path, "listen_on"),
                "enum",
                json!({"message": "Value not found in enumerated list of values",
                       "target": ["both", "self", "peer"], "value": listen}),
            );
        }
    }
    for key in ["numbers", "patterns"] {
        let Some(group) = object.get_mut(key) else {
            continue;
        };
        let group_path = join_path(path, key);
        let Some(nodes) = group.as_object_mut() else {
            errors.add(
                group_path,
                "type",
                json!({"message": "Value did not match type(s): object", "target": "object"}),
            );
            continue;
        };
        for (code, node) in nodes.iter_mut() {
            let node_path = join_path(&group_path, code);
            if key == "numbers" && (code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit())) {
                errors.add(
                    node_path.clone(),
                    "pattern",
                    json!({"message": "Failed to match pattern '^[0-9]+$'", "target": "^[0-9]+$", "value": code}),
                );
            }
            if key == "patterns" {
                if let Err(error) = regex::Regex::new(code) {
                    errors.add(
                        node_path.clone(),
                        "pattern",
                        json!({"message": format!("invalid regular expression: {error}"), "value": code}),
                    );
                }
            }
            validate_node(node, &node_path, 0, errors);
        }
    }
}

fn validate_node(node: &mut Value, path: &str, depth: usize, errors: &mut FieldErrors) {
    if depth > 16 {
        errors.add_message(
            path,
            "maxDepth",
            "metaflow nodes may nest at most 16 levels",
        );
        return;
    }
    let Some(object) = node.as_object_mut() else {
        errors.add(
            path,
            "type",
            json!({"message": "Value did not match type(s): object", "target": "object"}),
        );
        return;
    };
    let module = object
        .get("module")
        .and_then(Value::as_str)
        .map(str::to_string);
    let entry = match &module {
        None => {
            errors.add_message(
                join_path(path, "module"),
                "required",
                "Field is required but missing",
            );
            None
        }
        Some(name) => match get(name) {
            Some(entry) => Some(entry),
            None => {
                errors.add(
                    join_path(path, "module"),
                    "enum",
                    json!({"message": format!("unable to find metaflow schema for module {name}"), "cause": name}),
                );
                None
            }
        },
    };
    let data = object
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(entry) = entry {
        let data_path = join_path(path, "data");
        match &entry.validator {
            Some(validator) => {
                let before = errors.len();
                for error in validator.iter_errors(data) {
                    super::push_schema_error(&error, &data_path, errors);
                }
                if errors.len() == before {
                    super::apply_defaults(&entry.schema, data);
                }
            }
            None => errors.add_message(data_path, "error", "schema unavailable"),
        }
    }
    if let Some(children) = object.get_mut("children") {
        let children_path = join_path(path, "children");
        match children.as_object_mut() {
            Some(children) => {
                for (key, child) in children.iter_mut() {
                    validate_node(child, &join_path(&children_path, key), depth + 1, errors);
                }
            }
            None => errors.add(
                children_path,
                "type",
                json!({"message": "Value did not match type(s): object", "target": "object"}),
            ),
        }
    }
}

/// Who pressed a code and the party it acts on (Kazoo: the transferor and the transferee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    /// The channel whose digits made the code (`None`: the far end, no longer bridged).
    pub presser: Option<String>,
    /// The other party (`None`: not bridged).
    pub other: Option<String>,
}

/// The two parties of a code pressed on `dtmf_leg` (`self` when absent).
pub fn parties(call: &Call, dtmf_leg: Option<&str>) -> Parties {
    let this = Some(call.uuid.clone());
    let far_end = call.peer_uuid().map(str::to_string);
    if dtmf_leg == Some("peer") {
        Parties {
            presser: far_end,
            other: this,
        }
    } else {
        Parties {
            presser: this,
            other: far_end,
        }
    }
}

/// A `leg` (`self`, `peer`, `both`) meant from the presser's side, seen from this channel
/// (Kazoo's `konami_play`: `self` is the leg that pressed).
pub fn leg_from_here<'a>(leg: &'a str, dtmf_leg: Option<&str>) -> &'a str {
    match (dtmf_leg, leg) {
        (Some("peer"), "self") => "peer",
        (Some("peer"), "peer") => "self",
        _ => leg,
    }
}

/// `uuid_broadcast` leg argument for a metaflow `leg` (`self`, `peer`, `both`).
pub fn broadcast_legs(leg: &str) -> &'static str {
    match leg {
        "peer" => "bleg",
        "both" => "both",
        _ => "aleg",
    }
}

/// Plays something to the call's legs without disturbing the running app
/// (`api uuid_broadcast <uuid> '<what>' <aleg|bleg|both>`; `what` is a path or `app::args`).
pub async fn broadcast(call: &mut Call, what: &str, leg: &str) -> Result<String, CallEnded> {
    let legs = broadcast_legs(leg);
    if legs != "aleg" && call.peer_uuid().is_none() {
        tracing::debug!(leg, "not bridged: broadcasting to this leg only");
    }
    let legs = if call.peer_uuid().is_none() {
        "aleg"
    } else {
        legs
    };
    let what = what.replace('\'', "");
    let uuid = call.uuid.clone();
    call.api(&format!("uuid_broadcast {uuid} '{what}' {legs}"))
        .await
}

/// The first capture (or the collected digits) of a pattern-triggered node.
pub fn first_capture(captures: &[String], collected: &Option<String>) -> Option<String> {
    captures
        .iter()
        .find(|c| !c.is_empty())
        .cloned()
        .or_else(|| collected.clone())
}

/// Fixtures shared by the metaflow tests (engine scenarios and one test module per metaflow
/// module): a callflow carrying a `metaflow`, a device to bridge, scripted calls and readers of
/// what the switch was asked.
#[cfg(test)]
pub(crate) mod testing {
    use crate::engine::simulate::Simulation;
    use crate::engine::testkit::{
        ACCOUNT, NUMBER, node, notes, run_with_store, script, store_with_flow, validated,
    };
    use crate::fakeswitch::{BridgeOutcome, CallScript, DtmfAt};
    use crate::store::memory::MemStore;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;

    /// The main callflow's id (routed on [`NUMBER`]).
    pub(crate) const MAIN: &str = "cf000000000000000000000000000001";
    /// The device the main flow bridges to (`user/peer@test.callflowd`).
    pub(crate) const PEER_DEVICE: &str = "dddddddddddddddddddddddddddd0f01";
    /// A second callflow (for the `callflow` metaflow), on number 2000.
    pub(crate) const SUB: &str = "00000000000000000000000000000f01";
    /// Digit timeout of the test metaflows: well above the 100 ms between scripted digits.
    pub(crate) const DIGIT_TIMEOUT_MS: u64 = 1200;

    /// A store whose main callflow runs `flow` (validated) with `metaflow` as its own
    /// `metaflow`, plus the device [`PEER_DEVICE`].
    pub(crate) fn store(flow: Value, metaflow: Value) -> Arc<MemStore> {
        let store = store_with_flow(json!({}));
        store.put(
            ACCOUNT,
            "callflows",
            MAIN,
            json!({"numbers": [NUMBER], "flow": validated(flow), "metaflow": metaflow}),
        );
        store.put(
            ACCOUNT,
            "devices",
            PEER_DEVICE,
            json!({"name": "peer", "sip": {"username": "peer"}}),
        );
        store
    }

    /// A main flow that bridges [`PEER_DEVICE`].
    pub(crate) fn bridge_flow(children: Value) -> Value {
        node("device", json!({"id": PEER_DEVICE}), children)
    }

    /// A main flow that plays 8 s of silence (no playback terminators, so the binding digit
    /// does not stop it), then `children`.
    pub(crate) fn unbridged_flow(children: Value) -> Value {
        node(
            "play",
            json!({"id": "silence_stream://8000", "terminators": []}),
            children,
        )
    }

    /// `metaflow` with the one code `code` (without the binding digit) running `node`.
    pub(crate) fn one_code(code: &str, node: Value) -> Value {
        json!({"digit_timeout": DIGIT_TIMEOUT_MS, "numbers": {code: node}})
    }

    /// A metaflow node.
    pub(crate) fn meta(module: &str, data: Value, children: Value) -> Value {
        json!({"module": module, "data": data, "children": children})
    }

    /// A metaflow node whose only trace is `uuid_broadcast <uuid> 'speak::flite|slt|<tag>'
    /// aleg`: tells which child ran.
    pub(crate) fn said(tag: &str) -> Value {
        meta("tts", json!({"text": tag}), json!({}))
    }

    /// The api line [`said`] makes on the channel `me`.
    pub(crate) fn said_line(me: &str, tag: &str) -> String {
        format!("uuid_broadcast {me} 'speak::flite|slt|{tag}' aleg")
    }

    /// A call whose bridge is answered at once and lasts `talk`, the caller pressing `digits`
    /// ([`CallScript::parse_digits`] syntax, e.g. `*4@bridge+300ms`).
    pub(crate) fn bridged_call(talk: Duration, digits: &str) -> CallScript {
        // `att_xfer` (attended transfer) is a stock app the fake does not list.
        let script = script()
            .bridge("*", BridgeOutcome::answered(talk))
            .known_app("att_xfer");
        if digits.is_empty() {
            script
        } else {
            script.dtmf(digits).expect("valid scripted digits")
        }
    }

    /// Runs the bridging main flow with `metaflow`; the bridge lasts `talk` and the caller
    /// presses `digits`.
    pub(crate) async fn run_bridged(metaflow: Value, talk: Duration, digits: &str) -> Simulation {
        run_with_store(
            store(bridge_flow(json!({})), metaflow),
            bridged_call(talk, digits),
        )
        .await
    }

    /// Seconds.
    pub(crate) fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// `script` plus the CHANNEL_DATA the far end's `bind_digit_action` queues when it presses
    /// `digits` (binding digit included), `after` the bridge started.
    pub(crate) fn peer_presses(script: CallScript, digits: &str, after: Duration) -> CallScript {
        script.event_at(
            DtmfAt::AppStart {
                app: "bridge".into(),
                nth: 1,
                offset: after,
            },
            "CHANNEL_DATA",
            &[("metaflow", "peer"), ("digits", digits)],
        )
    }

    /// Runs the bridging main flow (4 s bridge) with `metaflow` heard on the far end only
    /// (`listen_on: peer`); the far end presses `digits` 500 ms into the bridge, then the
    /// caller presses `caller_digits`.
    pub(crate) async fn run_pressed_by_peer(
        metaflow: Value,
        digits: &str,
        caller_digits: &str,
    ) -> Simulation {
        let mut metaflow = metaflow;
        if let Some(m) = metaflow.as_object_mut() {
            m.insert("listen_on".into(), json!("peer"));
        }
        let script = peer_presses(
            bridged_call(secs(4), caller_digits),
            digits,
            Duration::from_millis(500),
        );
        run_with_store(store(bridge_flow(json!({})), metaflow), script).await
    }

    /// Runs [`unbridged_flow`] with `metaflow`, the caller pressing `digits`.
    pub(crate) async fn run_unbridged(metaflow: Value, digits: &str) -> Simulation {
        let script = script().dtmf(digits).expect("valid scripted digits");
        run_with_store(store(unbridged_flow(json!({})), metaflow), script).await
    }

    /// The `api` commands the engine sent, without the `api ` prefix (only metaflows send any
    /// in these tests).
    pub(crate) fn apis(sim: &Simulation) -> Vec<String> {
        sim.transcript
            .command_lines()
            .into_iter()
            .filter_map(|line| line.strip_prefix("api ").map(str::to_string))
            .collect()
    }

    /// This call's channel uuid.
    pub(crate) fn me(sim: &Simulation) -> String {
        sim.transcript.uuid.clone()
    }

    /// The far end's uuid, from the CHANNEL_BRIDGE event the fake sent.
    pub(crate) fn peer(sim: &Simulation) -> String {
        sim.transcript
            .frames
            .iter()
            .filter(|f| f.event.as_deref() == Some("CHANNEL_BRIDGE"))
            .find_map(|f| {
                String::from_utf8_lossy(&f.bytes).lines().find_map(|line| {
                    line.strip_prefix("Other-Leg-Unique-ID: ")
                        .map(|uuid| uuid.trim().to_string())
                })
            })
            .expect("the call was bridged")
    }

    /// Timeline notes about metaflows (`metaflow code ...`, `metaflow module ...`, `peer
    /// digits ...`).
    pub(crate) fn metaflow_notes(sim: &Simulation) -> Vec<String> {
        notes(sim)
            .into_iter()
            .filter(|n| n.starts_with("metaflow ") || n.starts_with("peer digits"))
            .collect()
    }

    /// The codes the engine detected, as `<binding><code> on <leg>: <module|no match>`.
    pub(crate) fn codes(sim: &Simulation) -> Vec<String> {
        notes(sim)
            .into_iter()
            .filter_map(|n| n.strip_prefix("metaflow code ").map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_schemas_compile() {
        for entry in REGISTRY.values() {
            assert!(entry.validator.is_some(), "{}", entry.name);
        }
        assert_eq!(REGISTRY.len(), 13);
    }

    #[test]
    fn validates_metaflows_like_the_seed_schema() {
        let mut ok = json!({"binding_digit": "*", "digit_timeout": 800, "listen_on": "both",
            "numbers": {"2": {"module": "transfer", "data": {"target": "1000"}}},
            "patterns": {"^3(\\d+)$": {"module": "callflow", "data": {}, "children": {"_": {"module": "hangup", "data": {}}}}}});
        let mut errors = FieldErrors::new();
        validate_metaflows(&mut ok, "metaflow", &mut errors);
        assert!(errors.is_empty(), "{}", errors.to_json());
        let mut bad = json!({"binding_digit": "x", "digit_timeout": "slow", "listen_on": "all",
            "numbers": {"2a": {"module": "nope", "data": {}}}, "patterns": {"(": {"data": {}}}});
        validate_metaflows(&mut bad, "metaflow", &mut errors);
        let shown = errors.to_json();
        for key in [
            "metaflow.binding_digit",
            "metaflow.digit_timeout",
            "metaflow.listen_on",
            "metaflow.numbers.2a",
            "metaflow.numbers.2a.module",
            "metaflow.patterns.(",
            "metaflow.patterns.(.module",
        ] {
            assert!(shown.get(key).is_some(), "missing {key} in {shown}");
        }
    }
}

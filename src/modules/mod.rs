//! The callflow module registry: one file per module, one line per module in [`REGISTRY`].
//!
//! Like mini-redis keeps one command per file, each module file holds its typed `Data` (serde, with
//! Kazoo's defaults), the JSON schema the API validates that data against, and `run`, which drives
//! the call through the [`Call`] handle and returns the executor's next step. The same table serves
//! the API validator and the call engine, so a module cannot be valid in one and unknown in the
//! other. Adding a module = its file + one `entry::<...>()` line below + its tests.

use crate::callflow::errors::{FieldErrors, join_path};
use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

pub mod answer;
pub mod audio_macro;
pub mod branch_bnumber;
pub mod branch_variable;
pub mod bridge;
pub mod callflow;
pub mod check_cid;
pub mod collect_dtmf;
pub mod conference;
pub mod device;
pub mod disa;
pub mod dynamic_cid;
pub mod group;
pub mod hangup;
pub mod language;
pub mod lookupcidname;
pub mod media;
pub mod menu;
pub mod metaflow;
pub mod noop;
pub mod offnet;
pub mod park;
pub mod pivot;
pub mod play;
pub mod prepend_cid;
pub mod record_call;
pub mod resources;
pub mod response;
pub mod ring_group;
pub mod say;
pub mod set_cid;
pub mod set_variable;
pub mod set_variables;
pub mod sleep;
pub mod temporal_route;
pub mod transfer;
pub mod tts;
pub mod user;
pub mod webhook;

/// What a module asks the executor to do next (Kazoo's `cf_exe` exits).
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run `children[key]`, else `children["_"]`, else stop.
    Continue(String),
    /// Run the first existing child among `keys` (bridge failures: cause, then `sip:<code>`),
    /// else `children["_"]`, else stop.
    ContinueAny(Vec<String>),
    /// Run exactly `children[key]`; stop when it is missing (no `_` fallback).
    Attempt(String),
    /// Push the current node's `_` child and run this flow; counts against the branch limit.
    Branch(Box<Node>),
    /// Replace the flow without counting a branch (pivot).
    ContinueWithFlow(Box<Node>),
    /// Pop the stack, or hang up when it is empty.
    Stop,
    /// As `Stop`, hanging up with this cause when the stack is empty.
    StopWithCause(String),
    /// End the flow now, ignoring the stack (the module already hung up or the call is gone).
    HardStop,
    /// The call left our control (transfer, conference): end without hanging up.
    Transfer,
}

impl Next {
    /// The default exit: `children["_"]`.
    pub fn default_child() -> Self {
        Next::Continue("_".to_string())
    }
}

/// The future a module's `run` returns once type-erased by the registry.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Next, CallEnded>> + Send + 'a>>;

/// One callflow module. Implemented by a unit struct in the module's own file.
pub trait CallflowModule: 'static {
    /// The `module` name used in callflow JSON.
    const NAME: &'static str;
    /// The module's `data`, deserialised after schema validation (defaults already applied).
    type Data: DeserializeOwned + Send;
    /// JSON schema of `data` (draft 7). Properties with a `default` are written into stored docs.
    fn schema() -> Value;
    /// Checks a schema cannot express (a regex that must compile with the `regex` crate...).
    /// Runs only when the schema passed.
    fn validate_extra(_data: &Value, _path: &str, _errors: &mut FieldErrors) {}
    /// Drives the call; `node` gives access to the child keys (menu, temporal_route use them).
    fn run(
        data: Self::Data,
        node: &Node,
        call: &mut Call,
    ) -> impl Future<Output = Result<Next, CallEnded>> + Send;
}

/// A registered module, type-erased.
pub struct ModuleEntry {
    /// Module name.
    pub name: &'static str,
    /// The data schema, served by `GET /v2/schemas/callflows.<name>`.
    pub schema: Value,
    validator: Option<jsonschema::Validator>,
    extra: fn(&Value, &str, &mut FieldErrors),
    run: for<'a> fn(&'a Node, &'a mut Call) -> RunFuture<'a>,
}

fn run_erased<'a, M: CallflowModule>(node: &'a Node, call: &'a mut Call) -> RunFuture<'a> {
    Box::pin(async move {
        match M::Data::deserialize(&node.data) {
            Ok(data) => M::run(data, node, call).await,
            Err(error) => {
                // Stored before a schema change, or imported raw: Kazoo continues on a crash.
                tracing::warn!(module = M::NAME, %error, "module data does not parse; continuing");
                Ok(Next::default_child())
            }
        }
    })
}

fn entry<M: CallflowModule>() -> ModuleEntry {
    let mut schema = M::schema();
    add_skip_module(&mut schema);
    let validator = jsonschema::options()
        .should_validate_formats(false)
        .build(&schema)
        .map_err(
            |e| tracing::error!(module = M::NAME, error = %e, "module schema does not compile"),
        )
        .ok();
    ModuleEntry {
        name: M::NAME,
        schema,
        validator,
        extra: M::validate_extra,
        run: run_erased::<M>,
    }
}

/// Every Kazoo data schema accepts `skip_module`; add it once here rather than in every file.
fn add_skip_module(schema: &mut Value) {
    if let Some(props) = schema.as_object_mut().and_then(|s| {
        s.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
    }) {
        props.entry("skip_module").or_insert_with(|| {
            serde_json::json!({
                "type": "boolean",
                "description": "When true the executor skips this node and continues to `_`"
            })
        });
    }
}

use serde::Deserialize as _;

/// The table every module is registered in, sorted by name.
pub static REGISTRY: LazyLock<BTreeMap<&'static str, ModuleEntry>> = LazyLock::new(|| {
    [
        entry::<answer::Answer>(),
        entry::<audio_macro::AudioMacro>(),
        entry::<branch_bnumber::BranchBnumber>(),
        entry::<branch_variable::BranchVariable>(),
        entry::<callflow::Callflow>(),
        entry::<check_cid::CheckCid>(),
        entry::<collect_dtmf::CollectDtmf>(),
        entry::<conference::Conference>(),
        entry::<device::Device>(),
        entry::<disa::Disa>(),
        entry::<dynamic_cid::DynamicCid>(),
        entry::<group::Group>(),
        entry::<hangup::Hangup>(),
        entry::<language::Language>(),
        entry::<lookupcidname::LookupCidName>(),
        entry::<menu::Menu>(),
        entry::<noop::Noop>(),
        entry::<offnet::Offnet>(),
        entry::<park::Park>(),
        entry::<pivot::Pivot>(),
        entry::<play::Play>(),
        entry::<prepend_cid::PrependCid>(),
        entry::<record_call::RecordCall>(),
        entry::<resources::Resources>(),
        entry::<response::Response>(),
        entry::<ring_group::RingGroup>(),
        entry::<say::Say>(),
        entry::<set_cid::SetCid>(),
        entry::<set_variable::SetVariable>(),
        entry::<set_variables::SetVariables>(),
        entry::<sleep::Sleep>(),
        entry::<temporal_route::TemporalRoute>(),
        entry::<transfer::Transfer>(),
        entry::<tts::Tts>(),
        entry::<user::User>(),
        entry::<webhook::Webhook>(),
    ]
    .into_iter()
    .map(|e| (e.name, e))
    .collect()
});

/// Builds the registry (compiles every module schema) now instead of on the first call.
pub fn warm_up() {
    LazyLock::force(&REGISTRY);
    LazyLock::force(&metaflow::REGISTRY);
}

/// Looks a module up by name.
pub fn get(name: &str) -> Option<&'static ModuleEntry> {
    REGISTRY.get(name)
}

/// Every registered module name, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.keys().copied()
}

impl ModuleEntry {
    /// Runs the module on this node.
    pub fn run<'a>(&self, node: &'a Node, call: &'a mut Call) -> RunFuture<'a> {
        (self.run)(node, call)
    }

    /// Validates `data` against the schema, reporting Kazoo-shaped errors under `path`
    /// (e.g. `flow.children._.data`), then writes the schema's defaults into it.
    pub fn validate_data(&self, data: &mut Value, path: &str, errors: &mut FieldErrors) {
        let Some(validator) = &self.validator else {
            errors.add_message(
                path,
                "error",
                format!("schema of module {} is unavailable", self.name),
            );
            return;
        };
        let before = errors.len();
        for error in validator.iter_errors(data) {
            push_schema_error(&error, path, errors);
        }
        if errors.len() == before {
            (self.extra)(data, path, errors);
        }
        if errors.len() == before {
            apply_defaults(&self.schema, data);
        }
    }
}

/// Maps one jsonschema error onto Crossbar's `{path: {rule: {message, ...}}}`.
pub fn push_schema_error(
    error: &jsonschema::ValidationError<'_>,
    base: &str,
    errors: &mut FieldErrors,
) {
    use jsonschema::error::ValidationErrorKind as K;
    let mut path = base.to_string();
    // The instance path is a JSON pointer: `/a/b~1c` -> segments `a`, `b/c`.
    for segment in error.instance_path.as_str().split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        path = join_path(&path, &key);
    }
    let value = error.instance.clone().into_owned();
    let (rule, detail) = match &error.kind {
        K::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            path = join_path(&path, name);
            (
                "required",
                serde_json::json!({"message": "Field is required but missing"}),
            )
        }
        K::Type { kind } => {
            let target = match kind {
                jsonschema::error::TypeKind::Single(t) => t.to_string(),
                jsonschema::error::TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            (
                "type",
                serde_json::json!({"message": format!("Value did not match type(s): {target}"), "target": target, "value": value}),
            )
        }
        K::Enum { options } => (
            "enum",
            serde_json::json!({"message": "Value not found in enumerated list of values", "target": options, "value": value}),
        ),
        K::MinLength { limit } => (
            "minLength",
            serde_json::json!({"message": format!("Value must be at least {limit} characters"), "target": limit, "value": value}),
        ),
        K::MaxLength { limit } => (
            "maxLength",
            serde_json::json!({"message": format!("String must not be more than {limit} characters"), "target": limit, "value": value}),
        ),
        K::Minimum { limit } => (
            "minimum",
            serde_json::json!({"message": format!("Value must be at least {limit}"), "target": limit, "value": value}),
        ),
        K::Maximum { limit } => (
            "maximum",
            serde_json::json!({"message": format!("Value must be at most {limit}"), "target": limit, "value": value}),
        ),
        K::MinItems { limit } => (
            "minItems",
            serde_json::json!({"message": format!("The list must have at least {limit} items"), "target": limit}),
        ),
        K::MaxItems { limit } => (
            "maxItems",
            serde_json::json!({"message": format!("The list must not have more than {limit} items"), "target": limit}),
        ),
        K::Pattern { pattern } => (
            "pattern",
            serde_json::json!({"message": format!("Failed to match pattern '{pattern}'"), "target": pattern, "value": value}),
        ),
        K::UniqueItems => (
            "uniqueItems",
            serde_json::json!({"message": "The list contains duplicate items"}),
        ),
        _ => ("invalid", serde_json::json!({"message": error.to_string()})),
    };
    errors.add(path, rule, detail);
}

/// Validates a whole flow tree held as JSON (pivot responses, imported flows): every node must be
/// an object with a registered `module` (1..64 chars) and an object `data` that passes that
/// module's schema (defaults are written in). Iterative, bounded by `MAX_DEPTH` / `MAX_NODES`, so
/// hostile nesting cannot overflow the stack.
pub fn validate_flow(flow: &mut Value, path: &str, errors: &mut FieldErrors) {
    use crate::callflow::model::{MAX_DEPTH, MAX_NODES};
    let mut pending: Vec<(&mut Value, String, usize)> = vec![(flow, path.to_string(), 0)];
    let mut seen = 0usize;
    while let Some((node, path, depth)) = pending.pop() {
        seen += 1;
        if seen > MAX_NODES {
            errors.add_message(
                path,
                "maxItems",
                format!("A flow may hold at most {MAX_NODES} nodes"),
            );
            return;
        }
        if depth > MAX_DEPTH {
            errors.add_message(
                path,
                "maxDepth",
                format!("A flow may nest at most {MAX_DEPTH} levels"),
            );
            return;
        }
        let Some(object) = node.as_object_mut() else {
            errors.add(
                path,
                "type",
                serde_json::json!({"message": "Value did not match type(s): object", "target": "object"}),
            );
            continue;
        };
        if object.is_empty() && depth > 0 {
            continue;
        }
        let module = match object.get("module") {
            None => {
                errors.add_message(
                    join_path(&path, "module"),
                    "required",
                    "Field is required but missing",
                );
                None
            }
            Some(Value::String(name)) if !name.is_empty() && name.len() <= 64 => Some(name.clone()),
            Some(Value::String(_)) => {
                errors.add_message(
                    join_path(&path, "module"),
                    "minLength",
                    "Value must be 1 to 64 characters",
                );
                None
            }
            Some(_) => {
                errors.add(
                    join_path(&path, "module"),
                    "type",
                    serde_json::json!({"message": "Value did not match type(s): string", "target": "string"}),
                );
                None
            }
        };
        let data_path = join_path(&path, "data");
        match object.get_mut("data") {
            None => errors.add_message(data_path.clone(), "required", "Field is required but missing"),
            Some(data) if !data.is_object() => errors.add(
                data_path.clone(),
                "type",
                serde_json::json!({"message": "Value did not match type(s): object", "target": "object"}),
            ),
            Some(data) => {
                if let Some(name) = &module {
                    match get(name) {
                        Some(entry) => entry.validate_data(data, &data_path, errors),
                        None => errors.add(
                            join_path(&path, "module"),
                            "enum",
                            serde_json::json!({
                                "message": format!("unable to find callflow schema for module {name}"),
                                "cause": name,
                            }),
                        ),
                    }
                }
            }
        }
        match object.get_mut("children") {
            None => {}
            Some(Value::Object(children)) => {
                let children_path = join_path(&path, "children");
                for (key, child) in children.iter_mut() {
                    pending.push((child, join_path(&children_path, key), depth + 1));
                }
            }
            Some(_) => errors.add(
                join_path(&path, "children"),
                "type",
                serde_json::json!({"message": "Value did not match type(s): object", "target": "object"}),
            ),
        }
    }
}

/// Writes `default` values of the schema's properties into missing keys, recursing into objects
/// (Kazoo's `use_defaults`), so the stored document says what will actually run.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    let (Some(props), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object_mut(),
    ) else {
        return;
    };
    for (key, prop) in props {
        match object.get_mut(key) {
            Some(existing) => apply_defaults(prop, existing),
            None => {
                if let Some(default) = prop.get("default") {
                    object.insert(key.clone(), default.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_has_schemas_that_compile() {
        for entry in REGISTRY.values() {
            assert!(
                entry.validator.is_some(),
                "{} schema must compile",
                entry.name
            );
            assert!(entry.schema["properties"]["skip_module"].is_object());
        }
        assert!(get("answer").is_some());
        assert!(get("nope").is_none());
    }

    #[test]
    fn defaults_are_written_and_errors_are_kazoo_shaped() {
        let play = get("play").unwrap();
        let mut data = json!({"id": "tone_stream://%(200,0,500)"});
        let mut errors = FieldErrors::new();
        play.validate_data(&mut data, "flow.data", &mut errors);
        assert!(errors.is_empty(), "{:?}", errors);
        assert_eq!(data["endless_playback"], json!(false));

        let mut bad = json!({"id": 5});
        play.validate_data(&mut bad, "flow.data", &mut errors);
        assert_eq!(
            errors.to_json()["flow.data.id"]["type"]["target"],
            json!("string")
        );
    }
}

//! Callflow document validation: one function used by the API, `callflowd validate` and
//! `callflowd import`, so all three give the same Kazoo-shaped errors.
//!
//! Order matters for safety:
//! 1. **Bounds first**, iteratively: `flow` (and each metaflow tree) may be at most
//!    [`MAX_DEPTH`] levels and [`MAX_NODES`] nodes. Only then do recursive steps (the JSON schema
//!    validator follows `$ref`s level by level) run, so no input can exhaust the stack.
//! 2. The seed JSON schema ([`schema`]), the same document served by
//!    `GET /v2/schemas/callflows` and embedded in the OpenAPI document.
//! 3. What a schema cannot say: at least one number or pattern; every pattern compiles with the
//!    `regex` crate (the engine's matcher); every `module` is registered, and its `data` passes
//!    that module's schema, whose defaults are then written into the document (Kazoo's
//!    `use_defaults`).
//!
//! Numbers are stored exactly as given. Kazoo normalises them to E.164 before saving; we do not,
//! because routing matches the destination number FreeSWITCH sends, and a silently rewritten
//! number would neither match nor be found by uniqueness as the client typed it. No Kazoo client
//! depends on the normalisation.

use crate::callflow::errors::{FieldErrors, join_path};
use crate::callflow::model::{MAX_DEPTH, MAX_NODES};
use crate::modules;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// Largest compiled size of one pattern (the routing index compiles the same regexes).
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The callflow document schema (Kazoo's `callflows.json`, with its definitions inline).
pub fn schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "callflows",
        "description": "Call flows describe steps to take in order to process a phone call. They are trees of information related to a phone call such as \"answer, play file, record file\" etc. that are logically grouped together and ordered.",
        "type": "object",
        "properties": {
            "featurecode": {
                "description": "When the callflow is used as a featurecode this object tracks the intended match of the pattern and name of the feature",
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 128},
                    "number": {"type": "string", "minLength": 1, "maxLength": 30}
                }
            },
            "flow": {"$ref": "#/definitions/callflows.action"},
            "metaflow": {"$ref": "#/definitions/metaflows"},
            "numbers": {
                "description": "A list of static numbers that the callflow should execute for",
                "type": "array",
                "default": [],
                "items": {"type": "string", "minLength": 1, "maxLength": 36}
            },
            "patterns": {
                "description": "A list of regular expressions that the callflow should execute for, with optional capture groups",
                "type": "array",
                "default": [],
                "items": {"type": "string", "minLength": 1}
            }
        },
        "definitions": {
            "callflows.action": {
                "description": "A callflow node defines a module to execute, data to provide to that module, and zero or more children to branch to",
                "type": "object",
                "required": ["data", "module"],
                "properties": {
                    "children": {
                        "description": "Children callflows",
                        "type": "object",
                        "patternProperties": {".+": {"$ref": "#/definitions/callflows.action"}}
                    },
                    "data": {
                        "description": "The data/arguments of the callflow module",
                        "type": "object",
                        "default": {}
                    },
                    "module": {
                        "description": "The name of the callflow module to execute at this node",
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64
                    }
                }
            },
            "metaflow": {
                "description": "A metaflow node defines a module to execute, data to provide to that module, and one or more children to branch to",
                "type": "object",
                "required": ["module"],
                "properties": {
                    "children": {
                        "description": "Children metaflows",
                        "type": "object",
                        "patternProperties": {".+": {"$ref": "#/definitions/metaflow"}}
                    },
                    "data": {
                        "description": "The data/arguments of the metaflow module",
                        "type": "object",
                        "default": {}
                    },
                    "module": {
                        "description": "The name of the metaflow module to execute at this node",
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64
                    }
                }
            },
            "metaflows": {
                "description": "Actions applied to a call outside of the normal callflow, initiated by the caller(s)",
                "type": "object",
                "properties": {
                    "binding_digit": {
                        "description": "What DTMF will trigger the collection and analysis of the subsequent DTMF sequence",
                        "type": "string",
                        "enum": ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#"],
                        "default": "*"
                    },
                    "digit_timeout": {
                        "description": "How long to wait between DTMF presses before processing the collected sequence (milliseconds)",
                        "type": "integer"
                    },
                    "listen_on": {
                        "description": "Which leg(s) of the call to listen for DTMF",
                        "type": "string",
                        "enum": ["both", "self", "peer"]
                    },
                    "numbers": {
                        "description": "A list of static numbers with their flows",
                        "type": "object",
                        "propertyNames": {"pattern": "^[0-9]+$"},
                        "patternProperties": {"^[0-9]+$": {"$ref": "#/definitions/metaflow"}}
                    },
                    "patterns": {
                        "description": "A list of patterns with their flows",
                        "type": "object",
                        "patternProperties": {".+": {"$ref": "#/definitions/metaflow"}}
                    }
                }
            }
        }
    })
}

static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    jsonschema::options()
        .should_validate_formats(false)
        .build(&schema())
        .map_err(|e| e.to_string())
});

/// Validates a callflow document (public fields only) and writes defaults into it.
/// `Err` carries the Kazoo 400 `data`.
pub fn validate_callflow(doc: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();

    // 1. Bounds, before anything recursive looks at the trees.
    check_bounds(doc, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    // 2. The seed schema.
    let instance = Value::Object(std::mem::take(doc));
    match &*VALIDATOR {
        Ok(validator) => {
            for error in validator.iter_errors(&instance) {
                push_error(&error, &mut errors);
            }
        }
        Err(message) => errors.add_message(
            "",
            "error",
            format!("callflow schema unavailable: {message}"),
        ),
    }
    let Value::Object(restored) = instance else {
        return Err(errors);
    };
    *doc = restored;

    // 3. Rules beyond the schema.
    check_numbers_or_patterns(doc, &mut errors);
    check_patterns(doc, &mut errors);
    check_metaflow_patterns(doc, &mut errors);
    if let Some(flow) = doc.get_mut("flow") {
        check_modules(flow, &mut errors);
    }

    if errors.is_empty() {
        apply_top_level_defaults(doc);
        Ok(())
    } else {
        Err(errors)
    }
}

/// Depth and size of every node tree, iteratively.
fn check_bounds(doc: &Map<String, Value>, errors: &mut FieldErrors) {
    if let Some(flow) = doc.get("flow") {
        if let Some((rule, message)) = tree_bounds(flow) {
            errors.add_message("flow", rule, message);
        }
    }
    let Some(metaflow) = doc.get("metaflow").and_then(Value::as_object) else {
        return;
    };
    for group in ["numbers", "patterns"] {
        let Some(entries) = metaflow.get(group).and_then(Value::as_object) else {
            continue;
        };
        for (key, tree) in entries {
            if let Some((rule, message)) = tree_bounds(tree) {
                errors.add_message(join_path(&format!("metaflow.{group}"), key), rule, message);
            }
        }
    }
}

/// `Some((rule, message))` when the tree under `root` is too deep or too large.
fn tree_bounds(root: &Value) -> Option<(&'static str, String)> {
    let mut stack: Vec<(&Value, usize)> = vec![(root, 1)];
    let mut nodes = 0usize;
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Some((
                "maxDepth",
                format!("Flow is nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        nodes += 1;
        if nodes > MAX_NODES {
            return Some(("maxNodes", format!("Flow has more than {MAX_NODES} nodes")));
        }
        if let Some(children) = node.get("children").and_then(Value::as_object) {
            stack.extend(children.values().map(|child| (child, depth + 1)));
        }
    }
    None
}

/// Maps a schema error to Crossbar's shape; `propertyNames` failures are reported on the
/// offending key (`metaflow.numbers.abc`) as a `pattern` error.
fn push_error(error: &jsonschema::ValidationError<'_>, errors: &mut FieldErrors) {
    use jsonschema::error::ValidationErrorKind as K;
    if let K::PropertyNames { error: inner } = &error.kind {
        let mut path = String::new();
        for segment in error.instance_path.as_str().split('/').skip(1) {
            path = join_path(&path, &segment.replace("~1", "/").replace("~0", "~"));
        }
        let key = inner.instance.as_str().unwrap_or_default().to_string();
        let pattern = match &inner.kind {
            K::Pattern { pattern } => pattern.clone(),
            _ => String::new(),
        };
        errors.add(
            join_path(&path, &key),
            "pattern",
            json!({"message": format!("Failed to match pattern '{pattern}'"), "target": pattern, "value": key}),
        );
        return;
    }
    modules::push_schema_error(error, "", errors);
}

fn check_numbers_or_patterns(doc: &Map<String, Value>, errors: &mut FieldErrors) {
    let non_empty = |key: &str| {
        doc.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if !non_empty("numbers") && !non_empty("patterns") && !errors.contains("numbers") {
        errors.add_message(
            "numbers",
            "required",
            "Callflows must be assigned at least one number or pattern",
        );
    }
}

/// Compiles a routing pattern the way the routing index will.
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

fn check_patterns(doc: &Map<String, Value>, errors: &mut FieldErrors) {
    let Some(patterns) = doc.get("patterns").and_then(Value::as_array) else {
        return;
    };
    for (index, pattern) in patterns.iter().enumerate() {
        let Some(pattern) = pattern.as_str().filter(|p| !p.is_empty()) else {
            continue;
        };
        if let Err(reason) = compile_pattern(pattern) {
            errors.add(
                format!("patterns.{index}"),
                "pattern",
                json!({"message": format!("Invalid regular expression: {}", first_line(&reason)), "value": pattern}),
            );
        }
    }
}

fn check_metaflow_patterns(doc: &Map<String, Value>, errors: &mut FieldErrors) {
    let Some(patterns) = doc
        .get("metaflow")
        .and_then(|m| m.get("patterns"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for key in patterns.keys() {
        if let Err(reason) = compile_pattern(key) {
            errors.add(
                join_path("metaflow.patterns", key),
                "pattern",
                json!({"message": format!("Invalid regular expression: {}", first_line(&reason)), "value": key}),
            );
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(text)
        .to_string()
}

/// Walks `flow` iteratively: every module registered, every `data` valid for it (defaults
/// written in).
fn check_modules(flow: &mut Value, errors: &mut FieldErrors) {
    let mut stack: Vec<(&mut Value, String)> = vec![(flow, "flow".to_string())];
    while let Some((node, path)) = stack.pop() {
        let Some(object) = node.as_object_mut() else {
            continue;
        };
        let module = object
            .get("module")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(module) = module {
            match modules::get(&module) {
                Some(entry) => {
                    if let Some(data) = object.get_mut("data").filter(|d| d.is_object()) {
                        entry.validate_data(data, &join_path(&path, "data"), errors);
                    }
                }
                None => errors.add(
                    join_path(&path, "module"),
                    "enum",
                    json!({
                        "message": format!("unable to find callflow schema for module {module}"),
                        "target": modules::names().collect::<Vec<_>>(),
                        "value": module,
                    }),
                ),
            }
        }
        if let Some(children) = object.get_mut("children").and_then(Value::as_object_mut) {
            for (key, child) in children.iter_mut() {
                let child_path = join_path(&join_path(&path, "children"), key);
                stack.push((child, child_path));
            }
        }
    }
}

fn apply_top_level_defaults(doc: &mut Map<String, Value>) {
    for key in ["numbers", "patterns"] {
        doc.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    }
    if let Some(metaflow) = doc.get_mut("metaflow").and_then(Value::as_object_mut) {
        metaflow
            .entry("binding_digit")
            .or_insert_with(|| Value::String("*".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> Result<Map<String, Value>, Value> {
        let mut doc = v.as_object().cloned().unwrap();
        validate_callflow(&mut doc)
            .map(|_| doc)
            .map_err(|e| e.to_json())
    }

    #[test]
    fn valid_doc_gets_defaults() {
        let doc = check(json!({
            "name": "main", "numbers": ["1000"], "ui_metadata": {"x": 1},
            "flow": {"module": "play", "data": {"id": "tone_stream://%(200,0,500)"},
                     "children": {"_": {"module": "hangup", "data": {}}}}
        }))
        .unwrap();
        assert_eq!(doc["patterns"], json!([]));
        assert_eq!(doc["flow"]["data"]["loop_count"], json!(1));
        assert_eq!(
            doc["flow"]["children"]["_"]["data"]["cause"],
            json!("NORMAL_CLEARING")
        );
        assert_eq!(doc["ui_metadata"], json!({"x": 1}));
    }

    #[test]
    fn missing_child_module_is_kazoo_shaped() {
        let errors = check(
            json!({"numbers": ["1"], "flow": {"module": "answer", "data": {},
            "children": {"_": {"data": {}}}}}),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            json!({"flow.children._.module": {"required": {"message": "Field is required but missing"}}})
        );
    }

    #[test]
    fn numbers_or_patterns_required_and_patterns_compile() {
        let errors = check(json!({"name": "x"})).unwrap_err();
        assert_eq!(
            errors["numbers"]["required"]["message"],
            "Callflows must be assigned at least one number or pattern"
        );
        let errors = check(json!({"patterns": ["^(12"]})).unwrap_err();
        assert!(errors["patterns.0"]["pattern"].is_object(), "{errors}");
        let errors = check(json!({"numbers": "1000"})).unwrap_err();
        assert!(errors["numbers"]["type"].is_object(), "{errors}");
    }

    #[test]
    fn unknown_module_and_bad_data() {
        let errors =
            check(json!({"numbers": ["1"], "flow": {"module": "nope", "data": {}}})).unwrap_err();
        assert!(errors["flow.module"]["enum"].is_object(), "{errors}");
        let errors =
            check(json!({"numbers": ["1"], "flow": {"module": "play", "data": {}}})).unwrap_err();
        assert!(errors["flow.data.id"]["required"].is_object(), "{errors}");
    }

    #[test]
    fn seed_schema_rules() {
        let errors = check(json!({
            "numbers": ["", "x".repeat(37)],
            "featurecode": {"name": "", "number": "1".repeat(31)},
            "metaflow": {"binding_digit": "x", "digit_timeout": "slow", "listen_on": "all",
                         "numbers": {"abc": {"module": "hangup"}}, "patterns": {"(": {"module": "hangup"}}}
        }))
        .unwrap_err();
        for (path, rule) in [
            ("numbers.0", "minLength"),
            ("numbers.1", "maxLength"),
            ("featurecode.name", "minLength"),
            ("featurecode.number", "maxLength"),
            ("metaflow.binding_digit", "enum"),
            ("metaflow.digit_timeout", "type"),
            ("metaflow.listen_on", "enum"),
            ("metaflow.numbers.abc", "pattern"),
            ("metaflow.patterns.(", "pattern"),
        ] {
            assert!(errors[path][rule].is_object(), "{path} {rule}: {errors}");
        }
    }

    #[test]
    fn depth_and_size_limits_are_iterative() {
        let mut flow = json!({"module": "answer", "data": {}});
        for _ in 0..MAX_DEPTH {
            flow = json!({"module": "answer", "data": {}, "children": {"_": flow}});
        }
        let errors = check(json!({"numbers": ["1"], "flow": flow})).unwrap_err();
        assert!(errors["flow"]["maxDepth"].is_object());

        let children: Map<String, Value> = (0..MAX_NODES)
            .map(|i| (format!("{i}"), json!({"module": "answer", "data": {}})))
            .collect();
        let errors = check(json!({"numbers": ["1"], "flow": {"module": "answer", "data": {}, "children": children}}))
            .unwrap_err();
        assert!(errors["flow"]["maxNodes"].is_object());

        let mut ok = json!({"module": "answer", "data": {}});
        for _ in 0..MAX_DEPTH - 1 {
            ok = json!({"module": "answer", "data": {}, "children": {"_": ok}});
        }
        assert!(check(json!({"numbers": ["1"], "flow": ok})).is_ok());
    }
}

//! The callflow document's executable part: the `flow` tree of module nodes.
//!
//! Documents are stored as JSON (unknown keys round-trip); the engine turns `flow` into [`Node`]s
//! once per call. Parsing is bounded by [`MAX_DEPTH`] and [`MAX_NODES`], the same limits the API
//! enforces, so a document that slipped in some other way still cannot exhaust the stack.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Deepest `children` nesting accepted anywhere (API and engine).
pub const MAX_DEPTH: usize = 64;
/// Most nodes one flow may hold.
pub const MAX_NODES: usize = 5_000;

/// One step of a callflow: a module, its data, and its children by branch key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// Registered module name.
    pub module: String,
    /// The module's arguments (validated, defaults applied by the API).
    pub data: Value,
    /// Children keyed by branch key (`_` is the default child).
    pub children: BTreeMap<String, Node>,
}

/// Why a stored flow could not be turned into nodes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlowError {
    /// `flow` or a child is not an object with a string `module`.
    #[error("node at {0} is not an object with a module")]
    Malformed(String),
    /// Deeper than [`MAX_DEPTH`].
    #[error("flow is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More than [`MAX_NODES`] nodes.
    #[error("flow has more than {MAX_NODES} nodes")]
    TooManyNodes,
}

impl Node {
    /// A node with no children (tests, pivot, simulate).
    pub fn leaf(module: &str, data: Value) -> Self {
        Node {
            module: module.to_string(),
            data,
            children: BTreeMap::new(),
        }
    }

    /// Adds a child (builder style, for tests and examples).
    pub fn child(mut self, key: &str, node: Node) -> Self {
        self.children.insert(key.to_string(), node);
        self
    }

    /// An empty node (`{}`) stops the executor, as in Kazoo.
    pub fn is_empty(&self) -> bool {
        self.module.is_empty()
    }

    /// Parses a `flow` value. `{}` gives an empty node.
    pub fn from_value(value: &Value) -> Result<Node, FlowError> {
        let mut count = 0;
        parse_node(value, 0, "flow", &mut count)
    }

    /// Serialises back to Kazoo JSON (simulate, pivot debug output).
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("module".into(), Value::String(self.module.clone()));
        object.insert("data".into(), self.data.clone());
        let children: Map<String, Value> = self
            .children
            .iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect();
        object.insert("children".into(), Value::Object(children));
        Value::Object(object)
    }
}

fn parse_node(
    value: &Value,
    depth: usize,
    path: &str,
    count: &mut usize,
) -> Result<Node, FlowError> {
    if depth > MAX_DEPTH {
        return Err(FlowError::TooDeep);
    }
    *count += 1;
    if *count > MAX_NODES {
        return Err(FlowError::TooManyNodes);
    }
    let object = value
        .as_object()
        .ok_or_else(|| FlowError::Malformed(path.to_string()))?;
    if object.is_empty() {
        return Ok(Node::default());
    }
    let module = object
        .get("module")
        .and_then(Value::as_str)
        .ok_or_else(|| FlowError::Malformed(path.to_string()))?
        .to_string();
    let data = object
        .get("data")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut children = BTreeMap::new();
    if let Some(kids) = object.get("children").and_then(Value::as_object) {
        for (key, child) in kids {
            let child_path = format!("{path}.children.{key}");
            children.insert(
                key.clone(),
                parse_node(child, depth + 1, &child_path, count)?,
            );
        }
    }
    Ok(Node {
        module,
        data,
        children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_children_and_round_trips() {
        let flow = json!({"module":"answer","data":{},"children":{"_":{"module":"hangup","data":{},"children":{}}}});
        let node = Node::from_value(&flow).unwrap();
        assert_eq!(node.children["_"].module, "hangup");
        assert_eq!(node.to_value(), flow);
    }

    #[test]
    fn depth_is_bounded() {
        let mut flow = json!({"module":"noop","data":{}});
        for _ in 0..100 {
            flow = json!({"module":"noop","data":{},"children":{"_":flow}});
        }
        assert_eq!(Node::from_value(&flow), Err(FlowError::TooDeep));
    }

    #[test]
    fn empty_object_is_empty_node() {
        assert!(Node::from_value(&json!({})).unwrap().is_empty());
        assert!(Node::from_value(&json!([])).is_err());
    }
}

//! PATCH semantics: Crossbar's deep merge of the request onto the stored document.
//!
//! Objects merge key by key (so `{"flow":{"data":{"id":"x"}}}` changes one field of the root
//! node and keeps its children); `null` deletes a key; arrays and scalars replace. The recursion
//! is bounded: request bodies are at most 128 levels deep (serde_json's parser limit), and past
//! [`MAX_MERGE_DEPTH`] the patch value simply replaces what is there.

use serde_json::{Map, Value};

/// Deeper than this the patch replaces instead of merging (never reached by parsed input).
pub const MAX_MERGE_DEPTH: usize = 256;

/// Merges `patch` into `target` in place.
pub fn deep_merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    merge_at(target, patch, 0);
}

fn merge_at(target: &mut Map<String, Value>, patch: Map<String, Value>, depth: usize) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) if depth < MAX_MERGE_DEPTH => match target.get_mut(&key) {
                Some(Value::Object(existing)) => merge_at(existing, inner, depth + 1),
                _ => {
                    // Nothing to merge into: the patch object is the new value, minus its nulls
                    // (a null inside a new object still means "absent").
                    let mut fresh = Map::new();
                    merge_at(&mut fresh, inner, depth + 1);
                    target.insert(key, Value::Object(fresh));
                }
            },
            other => {
                target.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn name_only_keeps_the_rest() {
        let mut doc = obj(json!({"name":"a","numbers":["1"],"flow":{"module":"answer","data":{}}}));
        deep_merge(&mut doc, obj(json!({"name":"b"})));
        assert_eq!(
            Value::Object(doc),
            json!({"name":"b","numbers":["1"],"flow":{"module":"answer","data":{}}})
        );
    }

    #[test]
    fn nested_flow_merges_and_null_deletes() {
        let mut doc = obj(json!({
            "numbers":["1"], "ui": {"x": 1},
            "flow":{"module":"play","data":{"id":"a","answer":true},"children":{"_":{"module":"hangup","data":{}}}}
        }));
        deep_merge(
            &mut doc,
            obj(
                json!({"ui": null, "flow":{"data":{"id":"b","answer":null},"children":{"1":{"module":"answer","data":{"k":null}}}}}),
            ),
        );
        assert_eq!(
            Value::Object(doc),
            json!({
                "numbers":["1"],
                "flow":{"module":"play","data":{"id":"b"},"children":{
                    "_":{"module":"hangup","data":{}},
                    "1":{"module":"answer","data":{}}}}
            })
        );
    }

    #[test]
    fn arrays_replace() {
        let mut doc = obj(json!({"numbers":["1","2"]}));
        deep_merge(&mut doc, obj(json!({"numbers":["3"]})));
        assert_eq!(doc["numbers"], json!(["3"]));
    }
}

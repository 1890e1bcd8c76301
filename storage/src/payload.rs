//! How deeply a payload may nest: serde_json writes any depth but reads
//! back at most 127 levels of arrays and objects, so a deeper payload would
//! be stored and then never read again. A runtime refuses such a payload
//! before it is written; a backend that finds one stored fails that job
//! alone.

use serde_json::Value;

/// The most levels of nested arrays and objects a payload may have. A
/// scalar has none, `[]` and `{}` one, `{"a": [1]}` two. It leaves room
/// below serde_json's reading limit for backends that store the payload
/// inside a record of their own (RocksDB's job record, a history entry).
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// A payload nested deeper than [`MAX_PAYLOAD_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the payload nests arrays and objects more than {limit} levels deep; it could not be read back once stored")]
pub struct PayloadTooDeep {
    /// The limit it is over ([`MAX_PAYLOAD_DEPTH`]).
    pub limit: usize,
}

/// Checks that `payload` nests at most [`MAX_PAYLOAD_DEPTH`] levels. Looks
/// no deeper than that, so it costs at most one walk over the value and
/// cannot overflow the stack on a value built deeper by hand.
///
/// ```
/// use runekernel_storage::{check_payload_depth, MAX_PAYLOAD_DEPTH};
/// use serde_json::{json, Value};
///
/// assert!(check_payload_depth(&json!({"sku": "a", "lines": [[1, 2]]})).is_ok());
/// let deep = (0..=MAX_PAYLOAD_DEPTH).fold(Value::Null, |inner, _| json!([inner]));
/// assert!(check_payload_depth(&deep).is_err());
/// ```
///
/// # Errors
/// [`PayloadTooDeep`] when it nests deeper.
pub fn check_payload_depth(payload: &Value) -> Result<(), PayloadTooDeep> {
    if within(payload, MAX_PAYLOAD_DEPTH) {
        Ok(())
    } else {
        Err(PayloadTooDeep {
            limit: MAX_PAYLOAD_DEPTH,
        })
    }
}

/// Whether `value` nests at most `levels` levels.
fn within(value: &Value, levels: usize) -> bool {
    match value {
        Value::Array(items) => levels > 0 && items.iter().all(|item| within(item, levels - 1)),
        Value::Object(fields) => levels > 0 && fields.values().all(|field| within(field, levels - 1)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `levels` levels of nested arrays, objects every other level.
    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, level| {
            if level % 2 == 0 {
                json!([inner])
            } else {
                json!({ "k": inner })
            }
        })
    }

    #[test]
    fn depth_is_counted_in_levels_of_arrays_and_objects() {
        assert!(check_payload_depth(&json!("scalar")).is_ok());
        assert!(check_payload_depth(&nested(MAX_PAYLOAD_DEPTH)).is_ok());
        assert_eq!(
            check_payload_depth(&nested(MAX_PAYLOAD_DEPTH + 1)),
            Err(PayloadTooDeep {
                limit: MAX_PAYLOAD_DEPTH
            })
        );
        let wide = json!([[], {}, [nested(MAX_PAYLOAD_DEPTH - 1)]]);
        assert!(check_payload_depth(&wide).is_err(), "the deepest branch counts");
    }

    #[test]
    fn an_allowed_payload_reads_back_even_wrapped_in_a_record() {
        let deepest = nested(MAX_PAYLOAD_DEPTH);
        // A backend's record wraps the payload in an object or two.
        let record = json!({ "job": { "payload": deepest } });
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), record);
    }

    #[test]
    fn serde_json_cannot_read_what_the_limit_keeps_out() {
        // Why the limit exists: past 127 levels, what is written does not
        // read back.
        let text = serde_json::to_string(&nested(128)).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err());
    }

    #[test]
    fn a_value_built_far_deeper_is_refused_without_walking_it_all() {
        let mut deep = Value::Null;
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(check_payload_depth(&deep).is_err());
        // Dropping such a value recurses; take it apart level by level.
        while let Value::Array(mut items) = deep {
            deep = items.pop().unwrap_or(Value::Null);
        }
    }
}

//! The storage codec: a machine value as a stored state name plus a JSON
//! payload of its fields (an object for struct variants, an array for tuple
//! variants, `null` for unit variants), and back.
//!
//! Fields are encoded one by one with serde, so a struct variant's payload is
//! independent of enum-level serde attributes, and a missing field decodes as
//! `null` (which an `Option` field accepts): adding an optional field to a
//! state does not break jobs already stored.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::definition::MachineDef;
use super::errors::UnknownState;

/// A machine value as stored: its state's stored name and its fields as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedState {
    /// The stored state name.
    pub state: &'static str,
    /// The state's fields.
    pub payload: Value,
}

/// A value that cannot be encoded, or a stored state that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The stored state name is not a state of the machine, typically because
    /// the machine's definition changed after the job was stored.
    #[error(transparent)]
    UnknownState(#[from] UnknownState),
    /// The stored payload does not fit the state's fields.
    #[error("{machine}: the stored data of state `{state}` does not decode{}: {message}", field_text(field.as_deref()))]
    Decode {
        /// The machine's name.
        machine: String,
        /// The state's stored name.
        state: String,
        /// The field that failed, if one did.
        field: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// A field failed to serialize.
    #[error("{machine}: field `{field}` of state `{state}` does not serialize: {source}")]
    Encode {
        /// The machine's name.
        machine: String,
        /// The state's stored name.
        state: String,
        /// The field.
        field: String,
        /// The serde error.
        source: serde_json::Error,
    },
}

fn field_text(field: Option<&str>) -> String {
    field.map(|f| format!(" (field `{f}`)")).unwrap_or_default()
}

impl CodecError {
    /// A [`CodecError::UnknownState`] for `def`.
    pub fn unknown_state(def: &MachineDef, state: &str) -> Self {
        CodecError::UnknownState(UnknownState::new(def, state))
    }
}

/// Encodes one field.
pub fn encode_field<T: Serialize + ?Sized>(
    machine: &str,
    state: &str,
    field: &str,
    value: &T,
) -> Result<Value, CodecError> {
    serde_json::to_value(value).map_err(|source| CodecError::Encode {
        machine: machine.to_owned(),
        state: state.to_owned(),
        field: field.to_owned(),
        source,
    })
}

/// Decodes one field; a missing field decodes from `null`.
pub fn decode_field<T: DeserializeOwned>(
    machine: &str,
    state: &str,
    field: &str,
    value: Option<Value>,
) -> Result<T, CodecError> {
    serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| CodecError::Decode {
        machine: machine.to_owned(),
        state: state.to_owned(),
        field: Some(field.to_owned()),
        message: e.to_string(),
    })
}

/// The object payload of a struct variant.
pub fn struct_fields(machine: &str, state: &str, payload: Value) -> Result<Map<String, Value>, CodecError> {
    match payload {
        Value::Object(map) => Ok(map),
        other => Err(CodecError::Decode {
            machine: machine.to_owned(),
            state: state.to_owned(),
            field: None,
            message: format!("expected an object of fields, found {}", kind(&other)),
        }),
    }
}

/// The array payload of a tuple variant with `len` fields.
pub fn tuple_fields(machine: &str, state: &str, payload: Value, len: usize) -> Result<Vec<Value>, CodecError> {
    match payload {
        Value::Array(items) if items.len() == len => Ok(items),
        other => Err(CodecError::Decode {
            machine: machine.to_owned(),
            state: state.to_owned(),
            field: None,
            message: format!("expected an array of {len} fields, found {}", kind(&other)),
        }),
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

//! A stored state (name + payload) as the enum's own serde JSON, externally
//! tagged (`{"Created": {"sku": "a", "qty": 1}}`, `"Cancelled"`), and back:
//! the form the admin API speaks. Fields keep their Rust names, so this is
//! exactly serde's output for an enum without renaming attributes.

use serde_json::{Map, Value};

use super::definition::{MachineDef, StateShape};

/// JSON that is not a state of the machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateJsonError {
    /// Not of the form `"State"` or `{"State": data}`.
    #[error("a `{machine}` state is written `\"State\"` or `{{\"State\": data}}`, with one of {states}")]
    Form {
        /// The machine.
        machine: String,
        /// Its states' JSON names.
        states: String,
    },
    /// A name that is not a state.
    #[error("`{name}` is not a state of the `{machine}` machine; its states are {states}")]
    UnknownState {
        /// The machine.
        machine: String,
        /// The given name.
        name: String,
        /// Its states' JSON names.
        states: String,
    },
    /// The data does not have the state's shape.
    #[error("`{name}` of the `{machine}` machine {expected}")]
    Shape {
        /// The machine.
        machine: String,
        /// The state.
        name: String,
        /// What it takes.
        expected: &'static str,
    },
}

impl MachineDef {
    /// The stored state as externally tagged JSON.
    pub fn state_to_json(&self, state: &str, payload: &Value) -> Value {
        let Some(def) = self.state(state) else {
            return single(state, payload.clone());
        };
        let name = def.json_name();
        match (def.shape, payload) {
            (StateShape::Unit, _) => Value::String(name.to_owned()),
            (StateShape::Tuple(1), Value::Array(items)) if items.len() == 1 => single(name, items[0].clone()),
            _ => single(name, payload.clone()),
        }
    }

    /// Externally tagged JSON as a stored state: its stored name and payload.
    ///
    /// # Errors
    /// A [`StateJsonError`] saying what form the JSON must take. Whether the
    /// payload's fields decode is for the machine's codec to say.
    pub fn state_from_json(&self, json: &Value) -> Result<(String, Value), StateJsonError> {
        let (name, data) = match json {
            Value::String(name) => (name.as_str(), None),
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((name, data)) => (name.as_str(), Some(data)),
                None => return Err(self.form_error()),
            },
            _ => return Err(self.form_error()),
        };
        let def = self
            .states()
            .iter()
            .find(|s| s.json_name() == name)
            .ok_or_else(|| StateJsonError::UnknownState {
                machine: self.name().to_owned(),
                name: name.to_owned(),
                states: self.json_names(),
            })?;
        let shape_error = |expected| StateJsonError::Shape {
            machine: self.name().to_owned(),
            name: name.to_owned(),
            expected,
        };
        let payload = match (def.shape, data) {
            (StateShape::Unit, None | Some(Value::Null)) => Value::Null,
            (StateShape::Unit, Some(_)) => return Err(shape_error("holds no data: write it as a bare string")),
            (StateShape::Tuple(1), Some(value)) => Value::Array(vec![value.clone()]),
            (StateShape::Tuple(n), Some(Value::Array(items))) if items.len() == n => Value::Array(items.clone()),
            (StateShape::Tuple(_), _) => return Err(shape_error("takes an array with one value per field")),
            (StateShape::Struct, Some(Value::Object(fields))) => Value::Object(fields.clone()),
            (StateShape::Struct, _) => return Err(shape_error("takes an object of its fields")),
            (StateShape::Data, data) => data.cloned().unwrap_or(Value::Null),
        };
        Ok((def.name.clone(), payload))
    }

    fn json_names(&self) -> String {
        self.states()
            .iter()
            .map(|s| format!("`{}`", s.json_name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn form_error(&self) -> StateJsonError {
        StateJsonError::Form {
            machine: self.name().to_owned(),
            states: self.json_names(),
        }
    }
}

fn single(name: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(name.to_owned(), value);
    Value::Object(map)
}

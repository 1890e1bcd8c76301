//! Errors of a machine at run time: an illegal transition and an unknown
//! state name. A graph that breaks the rules is `graph_error.rs`'s.

use super::definition::MachineDef;

/// A state change that the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// No transition is declared from `from` to `to`.
    #[error("{machine}: no transition from `{from}` to `{to}`; {}", allowed_text(from, allowed))]
    NotAllowed {
        /// The machine's name.
        machine: String,
        /// The current state.
        from: String,
        /// The requested state.
        to: String,
        /// The states `from` may move to.
        allowed: Vec<String>,
    },
    /// The transition exists but its guard returned false.
    #[error("{machine}: the guard `{guard}` rejected the transition from `{from}` to `{to}`")]
    GuardRejected {
        /// The machine's name.
        machine: String,
        /// The current state.
        from: String,
        /// The requested state.
        to: String,
        /// The guard's name.
        guard: String,
    },
}

fn allowed_text(from: &str, allowed: &[String]) -> String {
    if allowed.is_empty() {
        format!("`{from}` is terminal, so a job there cannot move")
    } else {
        let list: Vec<String> = allowed.iter().map(|s| format!("`{s}`")).collect();
        format!("from `{from}` a job may move to {}", list.join(", "))
    }
}

impl TransitionError {
    /// A [`TransitionError::NotAllowed`] that lists what `from` allows.
    pub fn not_allowed(def: &MachineDef, from: &str, to: &str) -> Self {
        TransitionError::NotAllowed {
            machine: def.name().to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            allowed: def.transitions_from(from).map(|t| t.to.clone()).collect(),
        }
    }

    /// A [`TransitionError::GuardRejected`].
    pub fn guard_rejected(def: &MachineDef, from: &str, to: &str, guard: &str) -> Self {
        TransitionError::GuardRejected {
            machine: def.name().to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            guard: guard.to_owned(),
        }
    }
}

/// A state name that the machine does not have (from `FromStr` on
/// `<Enum>State`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a state of the `{machine}` machine; {}", hint(suggestion.as_deref(), states))]
pub struct UnknownState {
    /// The machine's name.
    pub machine: String,
    /// The name that was given.
    pub name: String,
    /// The closest state name, if one is close.
    pub suggestion: Option<String>,
    /// The machine's states.
    pub states: Vec<String>,
}

fn hint(suggestion: Option<&str>, states: &[String]) -> String {
    let list = states.join(", ");
    match suggestion {
        Some(close) => format!("did you mean `{close}`? The states are {list}"),
        None => format!("the states are {list}"),
    }
}

impl UnknownState {
    /// Describes `name` as unknown to `def`, with a suggestion.
    pub fn new(def: &MachineDef, name: &str) -> Self {
        let states: Vec<String> = def.states().iter().map(|s| s.name.clone()).collect();
        UnknownState {
            machine: def.name().to_owned(),
            name: name.to_owned(),
            suggestion: super::graph::suggest(name, states.iter().map(String::as_str)).map(str::to_owned),
            states,
        }
    }
}

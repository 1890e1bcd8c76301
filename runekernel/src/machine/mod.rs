//! State machines: the [`StateMachine`] trait that `#[derive(StateMachine)]`
//! implements, the static description of a machine ([`MachineDef`]), the
//! run-time transition check and the storage codec.

pub(crate) mod checked;
pub(crate) mod codec;
mod definition;
mod errors;
pub(crate) mod graph;
mod graph_error;
mod json;
mod render;

use std::fmt::{Debug, Display};
use std::hash::Hash;

pub use codec::{CodecError, EncodedState};
pub use definition::{Fingerprint, MachineDef, MachineDefBuilder, StateDef, StateShape, Transition};
pub use errors::{TransitionError, UnknownState};
pub use graph_error::{GraphError, GraphProblem};
pub use json::StateJsonError;

/// A job's machine: an enum (usually) whose values are the states a job can
/// be in, with the data each state carries.
///
/// `#[derive(StateMachine)]` implements it and checks the transition graph at
/// compile time; it can also be implemented by hand, as long as
/// [`definition`](Self::definition) describes what the other methods do.
///
/// ```
/// use runekernel::prelude::*;
///
/// #[derive(StateMachine, Debug, PartialEq)]
/// enum Light {
///     #[state(initial)]
///     #[transition(to = Green)]
///     Red,
///     #[transition(to(Red, Off))]
///     Green,
///     #[state(terminal)]
///     Off,
/// }
///
/// assert_eq!(Light::NAME, "light");
/// assert!(Light::Red.can_transition_to(&Light::Green));
/// let err = Light::Red.transition(Light::Off).unwrap_err();
/// assert_eq!(err.to_string(), "light: no transition from `Red` to `Off`; from `Red` a job may move to `Green`");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a RuneKernel state machine",
    label = "this type does not implement `StateMachine`",
    note = "add `#[derive(StateMachine)]` to the enum that lists the job's states, or implement `runekernel::StateMachine` by hand"
)]
pub trait StateMachine: Sized + Send + Sync + 'static {
    /// The states without their data (`<Enum>State` for a derived machine).
    type State: MachineState;

    /// The machine's stored name: `#[machine(name = ..)]` or the enum name in
    /// snake_case. Jobs are stored under it.
    const NAME: &'static str;

    /// The static description of the machine: states, transitions, guards.
    fn definition() -> &'static MachineDef;

    /// The state this value is in.
    fn state(&self) -> Self::State;

    /// Checks a move from `self` to `next` against the declared transitions
    /// and their guards.
    ///
    /// # Errors
    /// [`TransitionError::NotAllowed`] when no transition is declared,
    /// [`TransitionError::GuardRejected`] when its guard returns false.
    fn check_transition(&self, next: &Self) -> Result<(), TransitionError>;

    /// Encodes the value for storage: its stored state name and a JSON
    /// payload of its fields.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when a field fails to serialize.
    fn encode(&self) -> Result<EncodedState, CodecError>;

    /// Decodes a stored state name and payload.
    ///
    /// # Errors
    /// [`CodecError::UnknownState`] when the machine has no such state (its
    /// definition changed), [`CodecError::Decode`] when the payload does not
    /// fit the state's fields.
    fn decode(state: &str, payload: serde_json::Value) -> Result<Self, CodecError>;

    /// The stored name of the current state.
    fn state_name(&self) -> &'static str {
        self.state().as_str()
    }

    /// Whether `next` is a legal next state, guards included.
    fn can_transition_to(&self, next: &Self) -> bool {
        self.check_transition(next).is_ok()
    }

    /// Moves to `next` if that is a legal transition.
    ///
    /// # Errors
    /// As [`check_transition`](Self::check_transition).
    fn transition(self, next: Self) -> Result<Self, TransitionError> {
        self.check_transition(&next)?;
        Ok(next)
    }

    /// Whether the current state is terminal.
    fn is_terminal(&self) -> bool {
        Self::definition().state(self.state_name()).is_some_and(|s| s.terminal)
    }

    /// Whether the current state is the initial state.
    fn is_initial(&self) -> bool {
        Self::definition().initial().name == self.state_name()
    }
}

/// The data-less state type of a machine (`<Enum>State`).
pub trait MachineState: Copy + Eq + Hash + Debug + Display + Send + Sync + 'static {
    /// The state's stored name.
    fn as_str(&self) -> &'static str;
}

impl MachineState for &'static str {
    fn as_str(&self) -> &'static str {
        self
    }
}

//! [`Registration`]: a machine made ready to run, behind one object-safe
//! interface. A typed machine (`Handler<M>`) and a dynamic one
//! (`DynamicMachine`) both become an [`ErasedMachine`] that steps stored
//! states (name + JSON payload); the runtime knows machines only as that.

use std::borrow::Cow;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::context::JobContext;
use crate::handler::Handler;
use crate::machine::checked::TransitionCheck;
use crate::machine::{CodecError, MachineDef, StateMachine, TransitionError};
use crate::step_error::StepError;
use crate::storage::StateChange;

/// A machine with its step function, working on stored states.
pub(crate) trait ErasedMachine: Send + Sync + 'static {
    /// The definition.
    fn definition(&self) -> &MachineDef;

    /// Checks that a stored state decodes.
    fn check_stored(&self, state: &str, payload: &Value) -> Result<(), CodecError>;

    /// Starts one step from a stored state. The future yields the next
    /// stored state, already checked against the transitions and guards.
    /// It borrows the machine rather than holding a reference count of its
    /// own: a count shared by every job of the machine would be changed at
    /// every step by every core running one, one contended cache line on
    /// the path of every step.
    ///
    /// # Errors
    /// The stored state does not decode.
    fn step<'a>(
        &'a self,
        state: &str,
        payload: Value,
        ctx: JobContext,
    ) -> Result<BoxFuture<'a, Result<StateChange, StepError>>, CodecError>;

    /// Checks a move between two stored states, guards included.
    fn check_move(&self, from: (&str, &Value), to: (&str, &Value)) -> Result<(), MoveError>;
}

/// Why a move between two stored states is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MoveError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A machine to register on a runtime: made from a typed handler
/// (`Order::handler(..)`) or a dynamic machine (`SimpleStateMachine`).
#[derive(Clone)]
pub struct Registration {
    pub(crate) machine: Arc<dyn ErasedMachine>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("machine", &self.machine.definition().name())
            .finish()
    }
}

impl<M: StateMachine> From<Handler<M>> for Registration {
    fn from(handler: Handler<M>) -> Self {
        Registration {
            machine: Arc::new(Typed { handler }),
        }
    }
}

/// A derived (or hand-written) machine and its handler.
struct Typed<M> {
    handler: Handler<M>,
}

/// Whether any transition out of `state` has a guard, which needs the
/// current value again after the handler consumed it.
fn has_guards(def: &MachineDef, state: &str) -> bool {
    def.transitions_from(state).any(|t| t.guard.is_some())
}

impl<M: StateMachine> ErasedMachine for Typed<M> {
    fn definition(&self) -> &MachineDef {
        M::definition()
    }

    fn check_stored(&self, state: &str, payload: &Value) -> Result<(), CodecError> {
        M::decode(state, payload.clone()).map(drop)
    }

    fn step<'a>(
        &'a self,
        state: &str,
        payload: Value,
        ctx: JobContext,
    ) -> Result<BoxFuture<'a, Result<StateChange, StepError>>, CodecError> {
        let def = M::definition();
        let kept = has_guards(def, state).then(|| payload.clone());
        let current = M::decode(state, payload)?;
        // The definition's copy of the name, if it has the state: no
        // allocation per step.
        let from: Cow<'static, str> = match def.state(state) {
            Some(known) => Cow::Borrowed(known.name.as_str()),
            None => Cow::Owned(state.to_owned()),
        };
        Ok(self.handler.run_checked(current, ctx, TransitionCheck { from, kept }))
    }

    fn check_move(&self, from: (&str, &Value), to: (&str, &Value)) -> Result<(), MoveError> {
        let from = M::decode(from.0, from.1.clone())?;
        let to = M::decode(to.0, to.1.clone())?;
        from.check_transition(&to)?;
        Ok(())
    }
}

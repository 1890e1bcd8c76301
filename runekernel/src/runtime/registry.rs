//! The machines a runtime runs, behind one object-safe interface: a typed
//! machine (`Handler<M>`) and a dynamic one (`DynamicMachine`) both become an
//! [`ErasedMachine`] that steps stored states (name + JSON payload).

use std::borrow::Cow;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::context::JobContext;
use crate::handler::Handler;
use crate::machine::{CodecError, MachineDef, StateMachine, TransitionError};
use crate::step_error::StepError;

/// A stored state: its name and payload.
pub(crate) type Stored = (String, Value);

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
    ) -> Result<BoxFuture<'a, Result<Stored, StepError>>, CodecError>;

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

/// What is checked of the state a step returns, before it is committed.
pub(crate) struct After {
    /// The state the step started from.
    from: Cow<'static, str>,
    /// Its value, kept for the guards when a transition out of it has one.
    kept: Option<Value>,
}

impl After {
    /// Checks that `next` is a transition of `M` from the starting state
    /// that passes its guard; returns it encoded for storage.
    pub(crate) fn check<M: StateMachine>(self, next: M) -> Result<Stored, StepError> {
        let def = M::definition();
        let to = next.state_name();
        if def.transition(&self.from, to).is_none() {
            // Only a hand-written handler can get here: derived handlers
            // return a `Next` enum of legal targets.
            return Err(StepError::fatal(TransitionError::not_allowed(def, &self.from, to)));
        }
        if let Some(payload) = self.kept {
            let current = M::decode(&self.from, payload).map_err(StepError::fatal)?;
            // A rejected guard fails the step like a retryable error.
            current.check_transition(&next).map_err(StepError::retry)?;
        }
        let encoded = next.encode().map_err(StepError::fatal)?;
        Ok((encoded.state.to_owned(), encoded.payload))
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
    ) -> Result<BoxFuture<'a, Result<Stored, StepError>>, CodecError> {
        let def = M::definition();
        let kept = has_guards(def, state).then(|| payload.clone());
        let current = M::decode(state, payload)?;
        // The definition's copy of the name, if it has the state: no
        // allocation per step.
        let from: Cow<'static, str> = match def.state(state) {
            Some(known) => Cow::Borrowed(known.name.as_str()),
            None => Cow::Owned(state.to_owned()),
        };
        Ok(self.handler.run_checked(current, ctx, After { from, kept }))
    }

    fn check_move(&self, from: (&str, &Value), to: (&str, &Value)) -> Result<(), MoveError> {
        let from = M::decode(from.0, from.1.clone())?;
        let to = M::decode(to.0, to.1.clone())?;
        from.check_transition(&to)?;
        Ok(())
    }
}

/// The registered machines, by name (foldhash: looked up for every job).
#[derive(Clone, Default)]
pub(crate) struct Registry {
    machines: foldhash::HashMap<String, Arc<dyn ErasedMachine>>,
    names: Vec<String>,
}

impl Registry {
    /// Adds a machine; the last registration of a name wins.
    pub(crate) fn add(&mut self, registration: Registration) {
        let name = registration.machine.definition().name().to_owned();
        if self.machines.insert(name.clone(), registration.machine).is_some() {
            tracing::warn!(machine = %name, "a machine was registered twice; the last registration is used");
        } else {
            self.names.push(name);
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn ErasedMachine>> {
        self.machines.get(name)
    }

    /// The registered machine names, in registration order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Every registered definition.
    pub(crate) fn definitions(&self) -> impl Iterator<Item = &MachineDef> {
        self.names
            .iter()
            .filter_map(|n| self.machines.get(n))
            .map(|m| m.definition())
    }
}

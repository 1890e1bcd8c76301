//! What a step's result is checked against before it is stored: the
//! [`TransitionCheck`] of the state it started from.

use std::borrow::Cow;

use serde_json::Value;

use super::{StateMachine, TransitionError};
use crate::step_error::StepError;
use crate::storage::StateChange;

/// What is checked of the state a step returns, before it is committed.
pub(crate) struct TransitionCheck {
    /// The state the step started from.
    pub(crate) from: Cow<'static, str>,
    /// Its value, kept for the guards when a transition out of it has one.
    pub(crate) kept: Option<Value>,
}

impl TransitionCheck {
    /// Checks that `next` is a transition of `M` from the starting state
    /// that passes its guard; returns it encoded for storage.
    pub(crate) fn check<M: StateMachine>(self, next: M) -> Result<StateChange, StepError> {
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
        Ok(StateChange {
            state: encoded.state.to_owned(),
            payload: encoded.payload,
            fingerprint: def.fingerprint().0,
        })
    }
}

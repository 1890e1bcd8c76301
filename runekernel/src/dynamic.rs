//! Machines built at run time: [`SimpleStateMachine`] describes one,
//! [`DynamicMachine`] is the checked result that a runtime registers.
//!
//! A dynamic job's data is one JSON value that travels with it from state to
//! state. The graph is checked by the same rules the derive applies at
//! compile time, but at [`build`](SimpleStateMachine::build), as a `Result`.
//!
//! ```
//! use runekernel::{DynamicNext, SimpleStateMachine};
//!
//! let review = SimpleStateMachine::new("review")
//!     .initial_state("draft")
//!     .state("in_review")
//!     .terminal_state("published")
//!     .terminal_state("rejected")
//!     .transition("draft", "in_review")
//!     .transition_if("in_review", "published", "approved", |data| data["approved"] == true)
//!     .transition("in_review", "rejected");
//! assert_eq!(review.transitions().len(), 3);
//!
//! let machine = review.build()?.with_handler(|_ctx, step| async move {
//!     Ok(match step.state.as_str() {
//!         "draft" => DynamicNext::to("in_review"),
//!         _ if step.data["approved"] == true => DynamicNext::to("published"),
//!         _ => DynamicNext::to("rejected"),
//!     })
//! });
//! assert_eq!(machine.definition().initial().name, "draft");
//! # Ok::<(), runekernel::GraphError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::context::JobContext;
use crate::machine::{CodecError, GraphError, MachineDef, StateDef, Transition, TransitionError};
use crate::registration::{ErasedMachine, MoveError, Registration};
use crate::step_error::StepError;
use crate::storage::StateChange;

/// A condition on a transition of a dynamic machine: given the data the job
/// would move with, may it take this transition?
pub type Condition = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

type StepFn = Arc<dyn Fn(JobContext, DynamicStep) -> BoxFuture<'static, Result<DynamicNext, StepError>> + Send + Sync>;

/// A machine described at run time. Add states and transitions, then
/// [`build`](Self::build) it.
#[derive(Clone, Default)]
#[must_use]
pub struct SimpleStateMachine {
    name: String,
    version: u32,
    allow_cycles: bool,
    states: Vec<StateDef>,
    transitions: Vec<Transition>,
    conditions: HashMap<(String, String), Condition>,
}

impl SimpleStateMachine {
    /// An empty machine called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        SimpleStateMachine {
            name: name.into(),
            version: 1,
            ..Self::default()
        }
    }

    /// Adds the state jobs start in.
    pub fn initial_state(self, name: impl Into<String>) -> Self {
        self.with_state(StateDef::new(name).initial())
    }

    /// Adds an intermediate state.
    pub fn state(self, name: impl Into<String>) -> Self {
        self.with_state(StateDef::new(name))
    }

    /// Adds a state jobs end in.
    pub fn terminal_state(self, name: impl Into<String>) -> Self {
        self.with_state(StateDef::new(name).terminal())
    }

    /// Adds a state with its own limits (`StateDef::with_timeout`, ...).
    pub fn with_state(mut self, state: StateDef) -> Self {
        self.states.push(state);
        self
    }

    /// Adds an unconditional transition.
    pub fn transition(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.transitions.push(Transition::new(from, to));
        self
    }

    /// Adds a transition taken only when `condition` holds for the data the
    /// job moves with; `name` names the condition in the definition, as a
    /// guard's path does for a derived machine.
    pub fn transition_if(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        name: impl Into<String>,
        condition: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> Self {
        let transition = Transition::new(from, to).with_guard(name);
        self.conditions
            .insert((transition.from.clone(), transition.to.clone()), Arc::new(condition));
        self.transitions.push(transition);
        self
    }

    /// Sets the version recorded in the definition (default 1).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Accepts states from which no terminal state can be reached.
    pub fn allow_cycles(mut self) -> Self {
        self.allow_cycles = true;
        self
    }

    /// The transitions so far: the same [`Transition`] values that
    /// [`MachineDef::transitions`] lists for a derived machine.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// Checks the graph and returns the machine, without a handler (see
    /// [`DynamicMachine::with_handler`]).
    ///
    /// # Errors
    /// A [`GraphError`] listing every broken rule.
    pub fn build(self) -> Result<DynamicMachine, GraphError> {
        let mut builder = MachineDef::builder(self.name)
            .version(self.version)
            .allow_cycles(self.allow_cycles);
        for state in self.states {
            builder = builder.state(state);
        }
        for transition in self.transitions {
            builder = builder.transition(transition);
        }
        Ok(DynamicMachine {
            def: builder.build()?,
            conditions: self.conditions,
            handler: None,
        })
    }
}

impl fmt::Debug for SimpleStateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleStateMachine")
            .field("name", &self.name)
            .field("states", &self.states)
            .field("transitions", &self.transitions)
            .finish()
    }
}

/// What a dynamic handler is given: the job's current state and data.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicStep {
    /// The current state's name.
    pub state: String,
    /// The job's data.
    pub data: Value,
}

/// What a dynamic handler returns: the state to move to, and optionally new
/// data (the current data is kept otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicNext {
    /// The next state's name.
    pub state: String,
    /// The job's new data, if it changes.
    pub data: Option<Value>,
}

impl DynamicNext {
    /// Move to `state`, keeping the data.
    pub fn to(state: impl Into<String>) -> Self {
        DynamicNext {
            state: state.into(),
            data: None,
        }
    }

    /// Move with new data.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl From<&str> for DynamicNext {
    fn from(state: &str) -> Self {
        DynamicNext::to(state)
    }
}

/// A checked dynamic machine, ready to register on a runtime.
///
/// Without a handler, a job advances along the only transition out of its
/// state (the lifecycle-only machine of an untyped [`Job`](crate::job::Job)
/// is such a machine); a state with several ways out needs a handler.
#[derive(Clone)]
pub struct DynamicMachine {
    def: MachineDef,
    conditions: HashMap<(String, String), Condition>,
    handler: Option<StepFn>,
}

impl DynamicMachine {
    /// The machine's definition.
    pub fn definition(&self) -> &MachineDef {
        &self.def
    }

    /// Sets the async step function: given the context and the current state
    /// and data, it returns the next state (see [`DynamicNext`]).
    #[must_use]
    pub fn with_handler<F, Fut>(mut self, step: F) -> Self
    where
        F: Fn(JobContext, DynamicStep) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<DynamicNext, StepError>> + Send + 'static,
    {
        self.handler = Some(Arc::new(move |ctx, s| Box::pin(step(ctx, s))));
        self
    }

    /// Checks a move to `to` with `data`: declared, and its condition holds.
    fn check(&self, from: &str, to: &str, data: &Value) -> Result<(), TransitionError> {
        let Some(transition) = self.def.transition(from, to) else {
            return Err(TransitionError::not_allowed(&self.def, from, to));
        };
        match self.conditions.get(&(from.to_owned(), to.to_owned())) {
            Some(condition) if !condition(data) => Err(TransitionError::guard_rejected(
                &self.def,
                from,
                to,
                transition.guard.as_deref().unwrap_or("condition"),
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for DynamicMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicMachine")
            .field("definition", &self.def)
            .field("has_handler", &self.handler.is_some())
            .finish()
    }
}

impl From<DynamicMachine> for Registration {
    fn from(machine: DynamicMachine) -> Self {
        Registration {
            machine: Arc::new(machine),
        }
    }
}

impl ErasedMachine for DynamicMachine {
    fn definition(&self) -> &MachineDef {
        &self.def
    }

    fn check_stored(&self, state: &str, _payload: &Value) -> Result<(), CodecError> {
        match self.def.state(state) {
            Some(_) => Ok(()),
            None => Err(CodecError::unknown_state(&self.def, state)),
        }
    }

    fn step<'a>(
        &'a self,
        state: &str,
        payload: Value,
        ctx: JobContext,
    ) -> Result<BoxFuture<'a, Result<StateChange, StepError>>, CodecError> {
        self.check_stored(state, &payload)?;
        let from = state.to_owned();
        Ok(Box::pin(async move {
            let next = match &self.handler {
                Some(handler) => {
                    let step = DynamicStep {
                        state: from.clone(),
                        data: payload.clone(),
                    };
                    handler(ctx, step).await?
                }
                None => {
                    let targets: Vec<&Transition> = self.def.transitions_from(&from).collect();
                    match targets.as_slice() {
                        [only] => DynamicNext::to(only.to.clone()),
                        _ => {
                            return Err(StepError::fatal(format!(
                                "`{from}` of the `{}` machine has {} ways out and no handler to choose; register the \
                                 machine with a handler",
                                self.def.name(),
                                targets.len()
                            )))
                        }
                    }
                }
            };
            let data = next.data.unwrap_or(payload);
            match self.check(&from, &next.state, &data) {
                Ok(()) => Ok(StateChange {
                    state: next.state,
                    payload: data,
                    fingerprint: self.def.fingerprint().0,
                }),
                Err(e @ TransitionError::GuardRejected { .. }) => Err(StepError::retry(e)),
                Err(e) => Err(StepError::fatal(e)),
            }
        }))
    }

    fn check_move(&self, from: (&str, &Value), to: (&str, &Value)) -> Result<(), MoveError> {
        self.check_stored(from.0, from.1)?;
        self.check_stored(to.0, to.1)?;
        Ok(self.check(from.0, to.0, to.1)?)
    }
}

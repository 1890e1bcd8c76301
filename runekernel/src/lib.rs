#![doc = include_str!("guide.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "admin")]
pub mod admin;
pub mod context;
pub mod dynamic;
pub mod handler;
pub mod job;
pub mod machine;
mod registration;
pub mod runtime;
mod signal;
pub mod step_error;
mod submit_options;

#[doc(hidden)]
pub mod __private;

pub use runekernel_macros::StateMachine;
pub use runekernel_storage as storage;

pub use context::{JobContext, Resources};
pub use dynamic::{Condition, DynamicMachine, DynamicNext, DynamicStep, SimpleStateMachine};
pub use handler::Handler;
pub use machine::{
    CodecError, EncodedState, Fingerprint, GraphError, GraphProblem, MachineDef, MachineDefBuilder, MachineState,
    StateDef, StateJsonError, StateMachine, StateShape, Transition, TransitionError, UnknownState,
};
pub use runtime::{
    termination, Backoff, BulkPage, JobView, PeriodicInfo, Policies, QueueInfo, Registration, Retention, Runtime,
    RuntimeBuilder, RuntimeError, Schedule, ScheduleError, StepHook, StepInfo, StepOutcome, SubmitOptions,
};
pub use step_error::{StepError, StepErrorKind};
pub use storage::{CancelOutcome, HistoryEntry, JobFilter, JobId, JobPage, JobRecord, JobState, ListOrder};

/// The state-machine vocabulary under the path the original RuneKernel
/// description uses (`runekernel::state_machine::{StateMachine, Transition}`).
pub mod state_machine {
    pub use crate::dynamic::SimpleStateMachine;
    pub use crate::machine::{MachineDef, StateMachine, Transition};
}

/// Everything a machine declaration, its handler and a runtime need.
pub mod prelude {
    pub use crate::{Handler, JobContext, JobId, JobState, JobView, Runtime, StateMachine, StepError, SubmitOptions};
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

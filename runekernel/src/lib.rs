//! RuneKernel: a typed, durable job runtime (work in progress).

pub mod context;
pub mod handler;
pub mod machine;
pub mod step_error;

#[doc(hidden)]
pub mod __private;

pub use runekernel_macros::StateMachine;
pub use runekernel_storage as storage;

pub use context::{JobContext, Resources};
pub use handler::Handler;
pub use machine::{
    CodecError, EncodedState, Fingerprint, GraphError, GraphProblem, MachineDef, MachineDefBuilder,
    MachineState, StateDef, StateMachine, Transition, TransitionError, UnknownState,
};
pub use step_error::{StepError, StepErrorKind};
pub use storage::{JobId, JobState};

/// Everything a machine declaration and its handler need.
pub mod prelude {
    pub use crate::{Handler, JobContext, JobId, JobState, StateMachine, StepError};
}

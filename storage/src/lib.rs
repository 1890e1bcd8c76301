//! Storage for RuneKernel (work in progress: identity and lifecycle types).

mod id;
mod job_state;

pub use id::{JobId, ParseJobIdError};
pub use job_state::{JobState, ParseJobStateError};

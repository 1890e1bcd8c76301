//! [`RuntimeError`]: every way a runtime call fails.

use crate::machine::{CodecError, Fingerprint, GraphError, TransitionError};
use crate::storage::{JobId, JobState, PayloadTooDeep, StorageError};

/// A runtime call's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No job has this id.
    #[error("job {0} does not exist")]
    NotFound(JobId),
    /// The job belongs to another machine than the one asked for.
    #[error("job {id} is a `{actual}` job, not a `{expected}` job")]
    WrongMachine {
        /// The job.
        id: JobId,
        /// The machine asked for.
        expected: String,
        /// The job's machine.
        actual: String,
    },
    /// `submit` was given a state that jobs cannot start in.
    #[error("a `{machine}` job must start in `{initial}`, not `{state}`")]
    NotInitial {
        /// The machine.
        machine: String,
        /// The state given.
        state: String,
        /// The machine's initial state.
        initial: String,
    },
    /// No machine of this name is registered on this runtime.
    #[error("no `{0}` machine is registered on this runtime; register it on the builder")]
    UnknownMachine(String),
    /// A stored job cannot be decoded by the registered machine, usually
    /// because the machine's definition changed after the job was stored.
    #[error(
        "job {id} of the `{machine}` machine is in state `{state}`, which the registered definition cannot read \
         (stored with fingerprint {stored}, registered definition has {current}): {source}"
    )]
    Decode {
        /// The job.
        id: JobId,
        /// The machine.
        machine: String,
        /// The stored state name.
        state: String,
        /// The fingerprint the job was stored with.
        stored: Fingerprint,
        /// The registered definition's fingerprint.
        current: Fingerprint,
        /// What failed.
        source: Box<CodecError>,
    },
    /// A value could not be encoded for storage, or a stored-form payload
    /// does not fit its state.
    #[error(transparent)]
    Encode(Box<CodecError>),
    /// A state whose payload nests too deeply to be read back once stored
    /// was refused before anything was written.
    #[error("a `{machine}` job in state `{state}` cannot be stored: {source}")]
    PayloadTooDeep {
        /// The machine.
        machine: String,
        /// The state's stored name.
        state: String,
        /// The limit it is over.
        source: PayloadTooDeep,
    },
    /// A requested state change is not a declared transition.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A dynamic machine's graph breaks the rules.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Replaying a job's history does not reproduce it.
    #[error("job {id} does not replay at history entry {seq}: {reason}")]
    Replay {
        /// The job.
        id: JobId,
        /// The first entry that does not fit.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// In deterministic mode, `wait` found the job unfinished after running
    /// every ready step: it needs the clock advanced or another job first.
    #[error("job {id} is {status}, and no step is ready to run; advance the clock (Runtime::advance) to go on")]
    Stalled {
        /// The job.
        id: JobId,
        /// Its lifecycle state.
        status: JobState,
    },
    /// The job is running; only its worker may change it.
    #[error("job {0} is running; wait for its step to finish, or cancel it")]
    JobRunning(JobId),
    /// A deletion of a job that has not finished.
    #[error("job {id} is {status}: only a finished job can be deleted; cancel it first")]
    NotFinished {
        /// The job.
        id: JobId,
        /// Its lifecycle state.
        status: JobState,
    },
    /// A retry of a job that did not fail and was not cancelled.
    #[error("job {id} is {status}: only a failed or cancelled job can be retried")]
    NotRetryable {
        /// The job.
        id: JobId,
        /// Its lifecycle state.
        status: JobState,
    },
    /// A submission or a queue operation with an empty queue name.
    #[error("the queue name is empty; name a queue, or leave it unset for the machine's own")]
    EmptyQueue,
    /// A configuration that cannot work.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// The runtime was shut down.
    #[error("the runtime is shut down")]
    Shutdown,
}

//! [`JobView`]: a job as its machine's type sees it.

use std::time::SystemTime;

use crate::runtime::clock::system_time;
use crate::storage::{JobId, JobRecord, JobState};

/// A job as its machine's type sees it, from `get::<M>` and `wait::<M>`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView<M> {
    /// The job's id.
    pub id: JobId,
    /// The machine state.
    pub state: M,
    /// The lifecycle state.
    pub status: JobState,
    /// Attempts of the current state's step so far.
    pub attempts: u32,
    /// Attempts allowed per step.
    pub max_attempts: u32,
    /// The most recent error of a failed step.
    pub last_error: Option<String>,
    /// Lower runs first.
    pub priority: i32,
    /// When it may next run.
    pub run_at: SystemTime,
    /// When it was submitted.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// How many commits it has had (the last history entry's `seq`).
    pub version: u64,
}

impl<M> JobView<M> {
    pub(crate) fn new(record: &JobRecord, state: M) -> Self {
        JobView {
            id: record.id,
            state,
            status: record.status,
            attempts: record.attempts,
            max_attempts: record.max_attempts,
            last_error: record.last_error.clone(),
            priority: record.priority,
            run_at: system_time(record.run_at),
            created_at: system_time(record.created_at),
            updated_at: system_time(record.updated_at),
            version: record.version,
        }
    }
}

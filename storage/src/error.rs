//! [`StorageError`]: every way a storage operation fails.

use crate::model::LeaseToken;
use crate::JobId;

/// A storage operation's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No job has this id.
    #[error("job {0} does not exist")]
    NotFound(JobId),
    /// A job with this id already exists.
    #[error("job {0} already exists")]
    DuplicateId(JobId),
    /// The job changed since the caller read it (another worker or an admin
    /// committed first).
    #[error("job {id} changed concurrently: expected version {expected}, found {actual}")]
    VersionConflict {
        /// The job.
        id: JobId,
        /// The version the caller read.
        expected: u64,
        /// The version stored now.
        actual: u64,
    },
    /// The caller's lease expired or was taken over, so it may not write.
    #[error("job {id}: lease {} is no longer held (it expired or another worker took the job over)", token.0)]
    LeaseLost {
        /// The job.
        id: JobId,
        /// The lease the caller presented.
        token: LeaseToken,
    },
    /// A commit without a lease on a job that a worker is running.
    #[error("job {id} is running; only its worker may change it (cancel it instead)")]
    JobRunning {
        /// The job.
        id: JobId,
    },
    /// A stored row that cannot be read back (corrupted or written by an
    /// incompatible version). Only this job is affected.
    #[error("job {id}: the stored row cannot be read: {message}")]
    Corrupt {
        /// The job.
        id: JobId,
        /// What is wrong with it.
        message: String,
    },
    /// A request that makes no sense, such as a claim limit of zero.
    #[error("invalid storage request: {0}")]
    Invalid(String),
    /// The backend was shut down.
    #[error("the storage backend is closed")]
    Closed,
    /// The database itself failed (I/O, connection, SQL).
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// Wraps a database error.
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StorageError::Backend(error.into())
    }

    /// Whether the operation lost a race (version conflict or lease lost):
    /// the caller's view is stale and retrying the same write cannot succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StorageError::VersionConflict { .. } | StorageError::LeaseLost { .. } | StorageError::JobRunning { .. }
        )
    }
}

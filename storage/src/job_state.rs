//! [`JobState`]: a job's runtime lifecycle, apart from its machine state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its lifecycle.
///
/// `Pending` jobs wait for a worker (from `run_at` on); a `Running` job is
/// held by one worker under a lease; `Completed`, `Failed` and `Cancelled`
/// are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to run.
    Pending,
    /// Held by a worker.
    Running,
    /// Reached a terminal machine state.
    Completed,
    /// Ran out of attempts, or failed fatally.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl JobState {
    /// Every lifecycle state.
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The finished lifecycle states: completed, failed, cancelled.
    pub const FINISHED: [JobState; 3] = [JobState::Completed, JobState::Failed, JobState::Cancelled];

    /// Checks that this is a finished state, for a call that only takes
    /// one (a prune).
    ///
    /// # Errors
    /// [`StorageError::Invalid`](crate::StorageError::Invalid) naming it.
    pub fn expect_finished(self) -> Result<(), crate::StorageError> {
        if self.is_finished() {
            Ok(())
        } else {
            Err(crate::StorageError::Invalid(format!(
                "`{self}` is not a finished lifecycle state (completed, failed or cancelled)"
            )))
        }
    }

    /// The stored name: `pending`, `running`, `completed`, `failed`, `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job is done for good (completed, failed or cancelled).
    pub const fn is_finished(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a job lifecycle state; expected pending, running, completed, failed or cancelled")]
pub struct ParseJobStateError(pub String);

impl FromStr for JobState {
    type Err = ParseJobStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseJobStateError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert!("done".parse::<JobState>().is_err());
    }
}

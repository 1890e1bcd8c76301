//! A [`Commit`]: one outcome of one job, written as one compare-and-set
//! that appends one history entry.
//!
//! Each [`Outcome`] names the columns it changes, so a backend writes those
//! alone and lets the database check the version and the lease in the same
//! statement; nothing of the job needs to be read first. The rules a
//! backend follows (which lifecycle state, what happens to the run time,
//! the attempts counter, the lease and the cancellation request) are the
//! methods of [`Outcome`], so every backend, SQL or Rust, follows the same
//! ones.

use serde_json::Value;

use crate::model::{JobRecord, LeaseToken, Millis};
use crate::{JobId, JobState};

/// A new machine state: its stored name and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The state's stored name.
    pub state: String,
    /// Its fields as JSON.
    pub payload: Value,
    /// The fingerprint of the definition that produced it.
    pub fingerprint: u64,
}

/// What a commit records about a job: the outcome of a step, or an
/// operator's change.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The job moved to a new, non-terminal state and its worker goes
    /// straight on to the next step: still `Running`, its lease extended to
    /// `lease_until`.
    Continued {
        /// The new state.
        to: StateChange,
        /// The lease's new expiry.
        lease_until: Millis,
    },
    /// The job moved to a new, non-terminal state and waits for a claim:
    /// `Pending` from `run_at`.
    Advanced {
        /// The new state.
        to: StateChange,
        /// When it may next be claimed.
        run_at: Millis,
    },
    /// The job moved to a terminal state: `Completed`.
    Completed {
        /// The terminal state.
        to: StateChange,
    },
    /// The step failed and runs again: `Pending` from `run_at`, the error
    /// recorded, the attempt counted.
    Retrying {
        /// When the next attempt may start.
        run_at: Millis,
        /// Why the step failed.
        error: String,
    },
    /// The step asked to wait: `Pending` from `run_at`, and the claim's
    /// attempt given back (a snooze is not a failure).
    Snoozed {
        /// When it may next be claimed.
        run_at: Millis,
    },
    /// The job gave up: `Failed`, with the error.
    Failed {
        /// Why.
        error: String,
    },
    /// The job was cancelled: `Cancelled`, with the reason.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// A failed or cancelled job runs again from the state it stopped in:
    /// `Pending` from `run_at`, its attempts reset, the reason recorded.
    Reopened {
        /// When it may next be claimed.
        run_at: Millis,
        /// Who asked, and why.
        reason: String,
    },
}

/// What a commit does to the job's attempts counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptsAfter {
    /// Left as it is: the attempt just made counts.
    Kept,
    /// Back to 0: a new state, or a reopened job, waits for its first
    /// claim.
    Reset,
    /// 1: the new state's first attempt is under way, under the lease the
    /// worker kept (as if claimed), so a worker lost during it counts.
    FirstUnderWay,
    /// One less: the claim's attempt is given back.
    GivenBack,
}

impl AttemptsAfter {
    /// The counter after, from the counter before.
    pub fn apply(self, before: u32) -> u32 {
        match self {
            AttemptsAfter::Kept => before,
            AttemptsAfter::Reset => 0,
            AttemptsAfter::FirstUnderWay => 1,
            AttemptsAfter::GivenBack => before.saturating_sub(1),
        }
    }
}

impl Outcome {
    /// The lifecycle state after.
    pub fn status(&self) -> JobState {
        match self {
            Outcome::Continued { .. } => JobState::Running,
            Outcome::Advanced { .. }
            | Outcome::Retrying { .. }
            | Outcome::Snoozed { .. }
            | Outcome::Reopened { .. } => JobState::Pending,
            Outcome::Completed { .. } => JobState::Completed,
            Outcome::Failed { .. } => JobState::Failed,
            Outcome::Cancelled { .. } => JobState::Cancelled,
        }
    }

    /// The new machine state, for an outcome that moves the job.
    pub fn change(&self) -> Option<&StateChange> {
        match self {
            Outcome::Continued { to, .. } | Outcome::Advanced { to, .. } | Outcome::Completed { to } => Some(to),
            _ => None,
        }
    }

    /// [`change`](Self::change), taken out of the outcome (the outcome is
    /// left with an empty state and a null payload): for a backend or a
    /// caller that moves the new state into its record after the commit.
    pub(crate) fn take_change(&mut self) -> Option<StateChange> {
        match self {
            Outcome::Continued { to, .. } | Outcome::Advanced { to, .. } | Outcome::Completed { to } => {
                Some(StateChange {
                    state: std::mem::take(&mut to.state),
                    payload: to.payload.take(),
                    fingerprint: to.fingerprint,
                })
            }
            _ => None,
        }
    }

    /// The new run time, for an outcome that sets one; the others leave
    /// the job's as it is.
    pub fn run_at(&self) -> Option<Millis> {
        match self {
            Outcome::Advanced { run_at, .. }
            | Outcome::Retrying { run_at, .. }
            | Outcome::Snoozed { run_at }
            | Outcome::Reopened { run_at, .. } => Some(*run_at),
            _ => None,
        }
    }

    /// The error or reason recorded in history and as the job's last error.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Retrying { error, .. } | Outcome::Failed { error } => Some(error),
            Outcome::Cancelled { reason } | Outcome::Reopened { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The lease's new expiry, for the one outcome that keeps the lease
    /// ([`Outcome::Continued`]); every other outcome clears it.
    pub fn lease_until(&self) -> Option<Millis> {
        match self {
            Outcome::Continued { lease_until, .. } => Some(*lease_until),
            _ => None,
        }
    }

    /// What happens to the attempts counter.
    pub fn attempts(&self) -> AttemptsAfter {
        match self {
            Outcome::Continued { .. } => AttemptsAfter::FirstUnderWay,
            Outcome::Advanced { .. } | Outcome::Completed { .. } | Outcome::Reopened { .. } => AttemptsAfter::Reset,
            Outcome::Snoozed { .. } => AttemptsAfter::GivenBack,
            Outcome::Retrying { .. } | Outcome::Failed { .. } | Outcome::Cancelled { .. } => AttemptsAfter::Kept,
        }
    }
}

/// A compare-and-set update of one job that records one [`Outcome`] and
/// appends exactly one history entry, in one atomic write. Made by
/// [`Commit::held`] (a worker holding the job's lease) or
/// [`Commit::unleased`] (a change to a job that is not running).
///
/// ```
/// use runekernel_storage::{Commit, JobRecord, NewJob, JobId, Outcome};
///
/// let job = JobRecord::from_new(&NewJob::new(JobId::new(), "order", "Created", serde_json::json!({})));
/// let commit = Commit::unleased(&job, 5, Some("admin".into()), Outcome::Cancelled { reason: "duplicate".into() });
/// assert_eq!(commit.expected_version, job.version);
/// assert_eq!(commit.lease, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Commit {
    /// The job.
    pub id: JobId,
    /// The version the caller read; the commit fails with
    /// [`StorageError::VersionConflict`](crate::StorageError::VersionConflict)
    /// if the job has changed since.
    pub expected_version: u64,
    /// The lease the caller holds. `Some`: it must be the job's current,
    /// unexpired lease. `None`: the job must not be running (an operator's
    /// change, the cancellation of a pending job).
    pub lease: Option<LeaseToken>,
    /// What the commit records.
    pub outcome: Outcome,
    /// The time of the commit.
    pub now: Millis,
    /// Who committed it (a worker, or whoever asked for the change),
    /// recorded in history.
    pub worker: Option<String>,
}

impl Commit {
    /// The commit of `outcome` by `worker`, which holds `job` under the
    /// lease `lease`, at `now`.
    pub fn held(job: &JobRecord, lease: LeaseToken, worker: impl Into<String>, now: Millis, outcome: Outcome) -> Self {
        Commit {
            id: job.id,
            expected_version: job.version,
            lease: Some(lease),
            outcome,
            now,
            worker: Some(worker.into()),
        }
    }

    /// The commit of `outcome` on `job`, which is not running, at `now`;
    /// `by` names who asked, if anyone.
    pub fn unleased(job: &JobRecord, now: Millis, by: Option<String>, outcome: Outcome) -> Self {
        Commit {
            id: job.id,
            expected_version: job.version,
            lease: None,
            outcome,
            now,
            worker: by,
        }
    }

    /// The lifecycle state after: [`Outcome::status`].
    pub fn status(&self) -> JobState {
        self.outcome.status()
    }
}

/// What a stored commit tells its caller beyond the commit itself: the
/// answer of [`Storage::commit_batch`](crate::Storage::commit_batch). The
/// caller that made the commit from its copy of the job brings that copy up
/// to date with [`JobRecord::committed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Committed {
    /// Whether cancellation of the job is requested: it may have been
    /// asked for after the caller read the job.
    pub cancel_requested: bool,
    /// The reason given with that request, if any.
    pub cancel_reason: Option<String>,
}

impl Committed {
    /// The answer for a job whose cancellation is (or is not) requested,
    /// with no reason given.
    pub fn new(cancel_requested: bool) -> Self {
        Committed {
            cancel_requested,
            cancel_reason: None,
        }
    }

    /// The answer read off the stored job after the commit: its
    /// cancellation request and the request's reason.
    pub fn of(stored: &JobRecord) -> Self {
        Committed {
            cancel_requested: stored.cancel_requested,
            cancel_reason: stored.cancel_reason.clone(),
        }
    }
}

impl JobRecord {
    /// Brings this copy of the job, the one `commit` was made from (its
    /// version is the commit's `expected_version`), up to date with the
    /// stored job after `commit` was written and answered `committed`. The
    /// new state and payload move in from the commit; the fields the commit
    /// does not change are left as they are in this copy.
    pub fn committed(&mut self, mut commit: Commit, committed: Committed) {
        let change = commit.outcome.take_change();
        self.apply_to_record(&commit);
        if let Some(change) = change {
            self.state = change.state;
            self.payload = change.payload;
        }
        let stands = committed.cancel_requested && !self.status.is_finished();
        self.cancel_requested = stands;
        self.cancel_reason = committed.cancel_reason.filter(|_| stands);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to() -> StateChange {
        StateChange {
            state: "B".into(),
            payload: serde_json::json!({ "n": 1 }),
            fingerprint: 3,
        }
    }

    #[test]
    fn each_outcome_names_what_it_writes() {
        let cases = [
            (
                Outcome::Continued {
                    to: to(),
                    lease_until: 9,
                },
                JobState::Running,
                AttemptsAfter::FirstUnderWay,
            ),
            (
                Outcome::Advanced { to: to(), run_at: 9 },
                JobState::Pending,
                AttemptsAfter::Reset,
            ),
            (
                Outcome::Completed { to: to() },
                JobState::Completed,
                AttemptsAfter::Reset,
            ),
            (
                Outcome::Retrying {
                    run_at: 9,
                    error: "e".into(),
                },
                JobState::Pending,
                AttemptsAfter::Kept,
            ),
            (
                Outcome::Snoozed { run_at: 9 },
                JobState::Pending,
                AttemptsAfter::GivenBack,
            ),
            (
                Outcome::Failed { error: "e".into() },
                JobState::Failed,
                AttemptsAfter::Kept,
            ),
            (
                Outcome::Cancelled { reason: "e".into() },
                JobState::Cancelled,
                AttemptsAfter::Kept,
            ),
            (
                Outcome::Reopened {
                    run_at: 9,
                    reason: "e".into(),
                },
                JobState::Pending,
                AttemptsAfter::Reset,
            ),
        ];
        for (outcome, status, attempts) in cases {
            assert_eq!(outcome.status(), status, "{outcome:?}");
            assert_eq!(outcome.attempts(), attempts, "{outcome:?}");
            assert_eq!(
                outcome.lease_until().is_some(),
                status == JobState::Running,
                "{outcome:?}"
            );
            assert_eq!(outcome.run_at().is_some(), status == JobState::Pending, "{outcome:?}");
        }
    }

    #[test]
    fn a_change_taken_out_leaves_the_outcome_empty() {
        let mut outcome = Outcome::Completed { to: to() };
        assert_eq!(outcome.take_change(), Some(to()));
        assert_eq!(outcome.change().map(|c| c.state.as_str()), Some(""));
        assert_eq!(Outcome::Snoozed { run_at: 1 }.take_change(), None);
    }

    #[test]
    fn a_copy_brought_up_to_date_matches_the_stored_job() {
        let new = crate::model::NewJob::new(JobId::new(), "m", "A", serde_json::json!({ "n": 0 }));
        let mut stored = JobRecord::from_new(&new);
        stored.claim("w", LeaseToken(4), 10, 1_000);
        let mut copy = stored.clone();
        let commit = Commit::held(
            &stored,
            LeaseToken(4),
            "w",
            20,
            Outcome::Continued {
                to: to(),
                lease_until: 2_000,
            },
        );
        stored.apply(&commit);
        stored.request_cancel(Some("cancelled by ops".into()));
        copy.committed(commit, Committed::of(&stored));
        assert_eq!(copy, stored);
    }

    #[test]
    fn the_attempts_counter_never_goes_below_zero() {
        assert_eq!(AttemptsAfter::GivenBack.apply(0), 0);
        assert_eq!(AttemptsAfter::GivenBack.apply(3), 2);
        assert_eq!(AttemptsAfter::Kept.apply(3), 3);
        assert_eq!(AttemptsAfter::Reset.apply(3), 0);
        assert_eq!(AttemptsAfter::FirstUnderWay.apply(3), 1);
    }
}

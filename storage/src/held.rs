//! The jobs a SQL storage holds leases on, as it last wrote them, so a commit
//! can skip reading them back. Only an optimization: the commit's write still
//! checks the row's version, status, lease token and cancellation flag, and a
//! job that changed meanwhile, whose remembered record refuses the commit, or
//! that is not here is read from the database as before.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::error::StorageError;
use crate::model::JobRecord;
use crate::{JobId, JobState};

/// Past this many jobs the cache starts over, so jobs whose lease was lost
/// without a word cannot make it grow without bound.
const LIMIT: usize = 1 << 16;

/// What a job's row must still hold for a commit computed from a record of
/// it (remembered, or read without locks) to be written: the columns every
/// other change to a running job touches.
#[derive(Clone, Copy)]
pub(crate) struct ExpectedRow {
    pub(crate) version: i64,
    pub(crate) status: &'static str,
    pub(crate) lease_token: Option<i64>,
    pub(crate) cancel_requested: bool,
}

impl ExpectedRow {
    pub(crate) fn of(r: &JobRecord) -> Self {
        ExpectedRow {
            version: r.version as i64,
            status: r.status.as_str(),
            lease_token: r.lease.as_ref().map(|l| l.token.0 as i64),
            cancel_requested: r.cancel_requested,
        }
    }
}

#[derive(Default)]
pub(crate) struct Held {
    jobs: Mutex<HashMap<JobId, JobRecord>>,
}

impl Held {
    /// Remembers the running jobs among `records`.
    pub(crate) fn remember<'a>(&self, records: impl IntoIterator<Item = &'a JobRecord>) {
        let mut jobs = self.lock();
        for record in records {
            if record.status == JobState::Running {
                if jobs.len() >= LIMIT {
                    jobs.clear();
                }
                jobs.insert(record.id, record.clone());
            }
        }
    }

    /// Takes the remembered records of `ids` out of the cache.
    pub(crate) fn take(&self, ids: impl IntoIterator<Item = JobId>) -> HashMap<JobId, JobRecord> {
        let mut jobs = self.lock();
        ids.into_iter()
            .filter_map(|id| jobs.remove(&id).map(|record| (id, record)))
            .collect()
    }

    /// Remembers the jobs a commit batch left running.
    pub(crate) fn settle(&self, results: &[Result<JobRecord, StorageError>]) {
        self.remember(results.iter().filter_map(|result| result.as_ref().ok()));
    }

    /// Forgets a job.
    pub(crate) fn forget(&self, id: JobId) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, JobRecord>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// The fixtures come from the `testing` feature, which the workspace's tests
// turn on.
#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::model::LeaseToken;

    fn running(n: u64) -> JobRecord {
        let mut record = JobRecord::from_new(&crate::testing::new_job("m", n));
        record.claim("w", LeaseToken(n), 0, 1_000);
        record
    }

    #[test]
    fn only_running_jobs_are_remembered_and_each_is_taken_once() {
        let held = Held::default();
        let (a, b) = (running(1), running(2));
        let mut done = running(3);
        done.status = JobState::Completed;
        held.remember([&a, &b, &done]);
        let taken = held.take([a.id, done.id]);
        assert_eq!(taken.keys().copied().collect::<Vec<_>>(), vec![a.id]);
        assert!(held.take([a.id]).is_empty());
        held.forget(b.id);
        assert!(held.take([b.id]).is_empty());
    }

    #[test]
    fn the_cache_starts_over_past_its_limit() {
        let held = Held::default();
        let first = running(0);
        held.remember([&first]);
        let many: Vec<JobRecord> = (1..LIMIT as u64 + 1).map(running).collect();
        held.remember(many.iter());
        assert!(held.take([first.id]).is_empty());
        assert_eq!(held.take([many[LIMIT - 1].id]).len(), 1);
    }
}

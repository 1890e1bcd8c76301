//! The in-memory store's index of jobs by when they are due: pending jobs
//! by due time, due jobs per queue and machine in claim order, running jobs
//! by lease expiry, and the paused queues. Claims, promotions, pauses and
//! most lifecycle changes take its one lock.
//!
//! The commit that ends a running job only has to drop the job's lease
//! entry. Waiting for the index lock for that (claims hold it while they
//! pick dozens of jobs) put the committing thread to sleep at the end of
//! many jobs, so such an entry is *retired* instead: put on a short list
//! with its own lock, and taken out of the index by the next holder of the
//! index lock, before it reads the index.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::lock;
use super::ready::ReadyJobs;
use crate::model::Millis;
use crate::JobId;

/// Retired entries that make a commit remove them itself, so the list
/// stays short even while no claim comes.
const MAX_RETIRED: usize = 1024;

/// The index, and the lease entries retired from it.
#[derive(Default)]
pub(super) struct IndexLock {
    index: Mutex<Index>,
    retired: Mutex<Vec<(Millis, JobId)>>,
}

/// Which jobs are due when.
#[derive(Default)]
pub(super) struct Index {
    /// Pending jobs by due time: (run_at, id).
    pub(super) scheduled: BTreeSet<(Millis, JobId)>,
    /// Due jobs per queue, then per machine. Looked up by name for every
    /// job claimed, hence foldhash.
    pub(super) ready: foldhash::HashMap<Arc<str>, foldhash::HashMap<Arc<str>, ReadyJobs>>,
    /// Running jobs by lease expiry: (expires_at, id).
    pub(super) leases: BTreeSet<(Millis, JobId)>,
    /// The paused queues: a claim takes none of their jobs. Kept under the
    /// index lock, so a claim that has read a queue as running has popped
    /// its jobs before a pause can return.
    pub(super) paused: BTreeSet<String>,
}

impl IndexLock {
    /// Locks the index, with every retired entry taken out.
    pub(super) fn lock(&self) -> MutexGuard<'_, Index> {
        let mut index = lock(&self.index);
        for entry in lock(&self.retired).drain(..) {
            index.leases.remove(&entry);
        }
        index
    }

    /// Retires the lease entry `(filed, id)` of a job that holds no lease
    /// any more and is not queued again. The entry may stay in the index a
    /// while; one popped meanwhile is checked against its job, finds it
    /// without a lease, and is dropped.
    pub(super) fn retire(&self, filed: Millis, id: JobId) {
        let mut retired = lock(&self.retired);
        retired.push((filed, id));
        if retired.len() >= MAX_RETIRED {
            drop(retired);
            drop(self.lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_entry_is_gone_from_the_index_once_it_is_locked_again() {
        let indexes = IndexLock::default();
        let (a, b) = (JobId::new(), JobId::new());
        indexes.lock().leases.extend([(10, a), (20, b)]);
        indexes.retire(10, a);
        assert_eq!(indexes.lock().leases.iter().copied().collect::<Vec<_>>(), [(20, b)]);
    }

    #[test]
    fn retired_entries_do_not_pile_up_while_the_index_is_not_locked() {
        let indexes = IndexLock::default();
        let ids: Vec<JobId> = (0..MAX_RETIRED).map(|_| JobId::new()).collect();
        indexes.lock().leases.extend(ids.iter().map(|&id| (1, id)));
        for &id in &ids {
            indexes.retire(1, id);
        }
        assert!(lock(&indexes.retired).is_empty(), "the last retire emptied the list");
        assert!(lock(&indexes.index).leases.is_empty());
    }
}

//! The jobs this runtime holds, and the heartbeat that keeps their leases.
//!
//! Every job this runtime holds a lease on, running or waiting in line for a
//! worker, has an [`ActiveJob`]: a cancellation signal its step's
//! `JobContext` sees, and a "lost" signal raised when the lease can no
//! longer be extended (another worker may have the job now: the step is
//! abandoned, or never started, and nothing is committed).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::signal::Signal;
use crate::storage::{JobId, LeaseToken, StorageError};

use super::Inner;

/// Signals for one running job.
#[derive(Clone)]
pub(crate) struct ActiveJob {
    pub(crate) lease: LeaseToken,
    pub(crate) cancel: Signal,
    pub(crate) lost: Signal,
}

/// The running jobs of this runtime, by id, and cancellations that arrived
/// between a job's claim and the start of its executor. Sharded by id:
/// every job's executor takes its shard's lock when it starts and ends, and
/// one lock for all made the two cores wait on each other.
pub(crate) struct ActiveJobs {
    shards: [Mutex<Jobs>; SHARDS],
}

const SHARDS: usize = 16;

#[derive(Default)]
struct Jobs {
    running: foldhash::HashMap<JobId, ActiveJob>,
    early_cancels: foldhash::HashMap<JobId, Instant>,
}

impl Default for ActiveJobs {
    fn default() -> Self {
        ActiveJobs {
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }
}

/// How long an early cancellation is remembered: far longer than the gap
/// between a claim and its executor, short enough not to accumulate.
const EARLY_CANCEL_MEMORY: Duration = Duration::from_secs(60);

impl ActiveJobs {
    /// Holds job `id` under `lease` until the returned guard is dropped:
    /// the heartbeat extends its lease meanwhile. An entry already held
    /// under the same lease (a job that waited in line for a worker) is
    /// taken over with its signals, so what the heartbeat saw while it
    /// waited (a cancellation, a lost lease) reaches its step.
    pub(crate) fn insert(&self, id: JobId, lease: LeaseToken) -> ActiveGuard<'_> {
        let mut jobs = self.lock(id);
        let active = match jobs.running.get(&id) {
            Some(held) if held.lease == lease => held.clone(),
            _ => {
                let active = ActiveJob {
                    lease,
                    cancel: Signal::new(),
                    lost: Signal::new(),
                };
                jobs.running.insert(id, active.clone());
                active
            }
        };
        jobs.early_cancels.retain(|_, at| at.elapsed() < EARLY_CANCEL_MEMORY);
        if jobs.early_cancels.remove(&id).is_some() {
            active.cancel.raise();
        }
        ActiveGuard {
            jobs: self,
            id,
            active,
            armed: true,
        }
    }

    /// Signals a running job's cancellation, or remembers it for an
    /// executor about to start.
    pub(crate) fn cancel(&self, id: JobId) {
        let mut jobs = self.lock(id);
        match jobs.running.get(&id) {
            Some(active) => active.cancel.raise(),
            None => {
                jobs.early_cancels.insert(id, Instant::now());
            }
        }
    }

    /// Stops holding job `id`, if it is still held under `lease` (not by a
    /// later claim of the same job).
    fn remove(&self, id: JobId, lease: LeaseToken) {
        let mut jobs = self.lock(id);
        if jobs.running.get(&id).is_some_and(|held| held.lease == lease) {
            jobs.running.remove(&id);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(JobId, ActiveJob)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(lock(shard).running.iter().map(|(id, a)| (*id, a.clone())));
        }
        all
    }

    /// The shard of job `id` (the low bits of a UUIDv7 are random).
    fn lock(&self, id: JobId) -> MutexGuard<'_, Jobs> {
        lock(&self.shards[(id.as_u128() as usize) % SHARDS])
    }
}

/// A job held in [`ActiveJobs`]: dropping it stops holding the job, so no
/// heartbeat keeps the lease of a job whose executor is gone (its future
/// dropped by a caller's timeout, a disconnected client, a panic).
pub(crate) struct ActiveGuard<'a> {
    jobs: &'a ActiveJobs,
    id: JobId,
    active: ActiveJob,
    /// Whether dropping the guard stops holding the job (not once handed
    /// over).
    armed: bool,
}

impl ActiveGuard<'_> {
    /// Leaves the job held for an executor that takes it over with
    /// [`ActiveJobs::insert`] and releases it when it is done.
    pub(crate) fn hand_over(mut self) {
        self.armed = false;
    }
}

impl std::ops::Deref for ActiveGuard<'_> {
    type Target = ActiveJob;

    fn deref(&self) -> &ActiveJob {
        &self.active
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.jobs.remove(self.id, self.active.lease);
        }
    }
}

fn lock(shard: &Mutex<Jobs>) -> MutexGuard<'_, Jobs> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Extends every held lease once; raises `cancel` for jobs whose
/// cancellation was requested and `lost` for leases that are gone.
pub(crate) async fn beat(rt: &Inner) {
    for (id, active) in rt.active.snapshot() {
        match rt
            .storage
            .heartbeat(id, active.lease, rt.clock.now(), rt.lease_ms())
            .await
        {
            Ok(beat) if beat.cancel_requested => active.cancel.raise(),
            Ok(_) => {}
            Err(StorageError::LeaseLost { .. } | StorageError::NotFound(_)) => {
                tracing::warn!(job = %id, "lease lost; abandoning the step");
                active.lost.raise();
            }
            Err(error) => tracing::warn!(job = %id, %error, "heartbeat failed; will retry"),
        }
    }
}

/// Beats every `policies.heartbeat` until the runtime is closed.
pub(crate) async fn heartbeat_loop(rt: Arc<Inner>) {
    loop {
        tokio::select! {
            () = rt.closed.raised() => return,
            () = tokio::time::sleep(rt.policies.heartbeat) => beat(&rt).await,
        }
    }
}

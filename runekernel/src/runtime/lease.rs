//! The jobs this runtime holds, and the heartbeat that keeps their leases.
//!
//! Every running job has an [`ActiveJob`]: a cancellation signal its step's
//! `JobContext` sees, and a "lost" signal raised when the lease can no
//! longer be extended (another worker may have the job now: the step is
//! abandoned and nothing is committed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::storage::{JobId, LeaseToken, StorageError};

use super::Inner;

/// Signals for one running job.
#[derive(Clone)]
pub(crate) struct ActiveJob {
    pub(crate) lease: LeaseToken,
    pub(crate) cancel: CancellationToken,
    pub(crate) lost: CancellationToken,
}

/// The running jobs of this runtime, by id, and cancellations that arrived
/// between a job's claim and the start of its executor.
#[derive(Default)]
pub(crate) struct ActiveJobs {
    jobs: Mutex<Jobs>,
}

#[derive(Default)]
struct Jobs {
    running: HashMap<JobId, ActiveJob>,
    early_cancels: HashMap<JobId, Instant>,
}

/// How long an early cancellation is remembered: far longer than the gap
/// between a claim and its executor, short enough not to accumulate.
const EARLY_CANCEL_MEMORY: Duration = Duration::from_secs(60);

impl ActiveJobs {
    pub(crate) fn insert(&self, id: JobId, lease: LeaseToken) -> ActiveJob {
        let active = ActiveJob {
            lease,
            cancel: CancellationToken::new(),
            lost: CancellationToken::new(),
        };
        let mut jobs = self.lock();
        jobs.early_cancels.retain(|_, at| at.elapsed() < EARLY_CANCEL_MEMORY);
        if jobs.early_cancels.remove(&id).is_some() {
            active.cancel.cancel();
        }
        jobs.running.insert(id, active.clone());
        active
    }

    /// Signals a running job's cancellation, or remembers it for an
    /// executor about to start.
    pub(crate) fn cancel(&self, id: JobId) {
        let mut jobs = self.lock();
        match jobs.running.get(&id) {
            Some(active) => active.cancel.cancel(),
            None => {
                jobs.early_cancels.insert(id, Instant::now());
            }
        }
    }

    pub(crate) fn remove(&self, id: JobId) {
        self.lock().running.remove(&id);
    }

    pub(crate) fn snapshot(&self) -> Vec<(JobId, ActiveJob)> {
        self.lock().running.iter().map(|(id, a)| (*id, a.clone())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Extends every held lease once; raises `cancel` for jobs whose
/// cancellation was requested and `lost` for leases that are gone.
pub(crate) async fn beat(rt: &Inner) {
    for (id, active) in rt.active.snapshot() {
        let now = rt.clock.now();
        let lease_ms = rt.policies.lease.as_millis() as u64;
        match rt.storage.heartbeat(id, active.lease, now, lease_ms).await {
            Ok(beat) if beat.cancel_requested => active.cancel.cancel(),
            Ok(_) => {}
            Err(StorageError::LeaseLost { .. } | StorageError::NotFound(_)) => {
                tracing::warn!(job = %id, "lease lost; abandoning the step");
                active.lost.cancel();
            }
            Err(error) => tracing::warn!(job = %id, %error, "heartbeat failed; will retry"),
        }
    }
}

/// Beats every `policies.heartbeat` until the runtime is closed.
pub(crate) async fn heartbeat_loop(rt: Arc<Inner>) {
    loop {
        tokio::select! {
            () = rt.closed.cancelled() => return,
            () = tokio::time::sleep(rt.policies.heartbeat) => beat(&rt).await,
        }
    }
}

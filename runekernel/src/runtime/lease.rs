//! The jobs this runtime holds, and the heartbeat that keeps their leases.
//!
//! Every running job has an [`ActiveJob`]: a cancellation signal its step's
//! `JobContext` sees, and a "lost" signal raised when the lease can no
//! longer be extended (another worker may have the job now: the step is
//! abandoned and nothing is committed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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

/// The running jobs of this runtime, by id.
#[derive(Default)]
pub(crate) struct ActiveJobs {
    jobs: Mutex<HashMap<JobId, ActiveJob>>,
}

impl ActiveJobs {
    pub(crate) fn insert(&self, id: JobId, lease: LeaseToken) -> ActiveJob {
        let active = ActiveJob {
            lease,
            cancel: CancellationToken::new(),
            lost: CancellationToken::new(),
        };
        self.lock().insert(id, active.clone());
        active
    }

    pub(crate) fn remove(&self, id: JobId) {
        self.lock().remove(&id);
    }

    pub(crate) fn get(&self, id: JobId) -> Option<ActiveJob> {
        self.lock().get(&id).cloned()
    }

    pub(crate) fn snapshot(&self) -> Vec<(JobId, ActiveJob)> {
        self.lock().iter().map(|(id, a)| (*id, a.clone())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, ActiveJob>> {
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

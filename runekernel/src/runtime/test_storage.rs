//! A store for the runtime's unit tests: the in-memory store with faults
//! switched on by hand (failing heartbeats, slow claims and commits), and
//! what those tests share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::runtime::Runtime;
use crate::storage::{
    CancelOutcome, Capabilities, ClaimRequest, Commit, Committed, CountRow, DeleteOutcome, Heartbeat, HistoryEntry,
    InMemoryStorage, Inserted, JobFilter, JobId, JobPage, JobRecord, JobState, LeaseToken, ListOrder, Millis, NewJob,
    Storage, StorageError, StorageEvent,
};
use crate::{DynamicMachine, Policies, SimpleStateMachine};

/// The in-memory store, with faults to switch on.
#[derive(Default)]
pub(crate) struct Faulty {
    inner: InMemoryStorage,
    /// Heartbeats fail as a whole while set.
    pub(crate) failing_heartbeats: AtomicBool,
    /// Heartbeat calls so far.
    pub(crate) heartbeats: AtomicU64,
    /// How long a claim waits before it is answered, in milliseconds (its
    /// leases are taken before the wait).
    pub(crate) slow_claims_ms: AtomicU64,
    /// How long a commit waits before it is written, in milliseconds.
    pub(crate) slow_commits_ms: AtomicU64,
    /// Each claim that found jobs: when it was answered, on tokio's clock.
    pub(crate) claims_answered: std::sync::Mutex<Vec<tokio::time::Instant>>,
    /// Whether it declares
    /// [`Capabilities::concurrent_claims`](crate::storage::Capabilities::concurrent_claims)
    /// (read when a runtime is built).
    pub(crate) concurrent_claims: AtomicBool,
}

async fn wait(ms: &AtomicU64) {
    let ms = ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[async_trait]
impl Storage for Faulty {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError> {
        self.inner.insert(job).await
    }
    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        self.inner.insert_batch(jobs).await
    }
    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        self.inner.get(id).await
    }
    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError> {
        self.inner.list_ordered(filter, after, limit, order).await
    }
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        let claimed = self.inner.claim(request).await;
        wait(&self.slow_claims_ms).await;
        if claimed.as_ref().is_ok_and(|jobs| !jobs.is_empty()) {
            if let Ok(mut answered) = self.claims_answered.lock() {
                answered.push(tokio::time::Instant::now());
            }
        }
        claimed
    }
    async fn claim_job(
        &self,
        id: JobId,
        worker: &str,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Option<JobRecord>, StorageError> {
        self.inner.claim_job(id, worker, now, lease_ms).await
    }
    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        wait(&self.slow_commits_ms).await;
        self.inner.commit_batch(commits).await
    }
    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        self.inner.history(id).await
    }
    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError> {
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        if self.failing_heartbeats.load(Ordering::SeqCst) {
            return Err(StorageError::backend("the database is unreachable"));
        }
        self.inner.heartbeat_batch(leases, now, lease_ms).await
    }
    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError> {
        self.inner.release(id, lease, now).await
    }
    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError> {
        self.inner.cancel(id, now, reason).await
    }
    async fn counts(&self) -> Result<Vec<CountRow>, StorageError> {
        self.inner.counts().await
    }
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError> {
        self.inner.delete(id).await
    }
    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError> {
        self.inner.prune_batch(status, before, limit).await
    }
    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError> {
        self.inner.try_duty(duty, owner, now, ttl_ms).await
    }
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError> {
        self.inner.set_queue_paused(queue, paused).await
    }
    async fn paused_queues(&self) -> Result<Vec<String>, StorageError> {
        self.inner.paused_queues().await
    }
    fn subscribe(&self) -> broadcast::Receiver<StorageEvent> {
        self.inner.subscribe()
    }
    fn capabilities(&self) -> Capabilities {
        if self.concurrent_claims.load(Ordering::SeqCst) {
            Capabilities::new().concurrent_claims()
        } else {
            Capabilities::new()
        }
    }
}

/// Machine `m`: `start`, then the terminal `done`; without a handler yet.
pub(crate) fn start_to_done() -> DynamicMachine {
    SimpleStateMachine::new("m")
        .initial_state("start")
        .terminal_state("done")
        .transition("start", "done")
        .build()
        .expect("a valid machine")
}

/// A runtime over `storage` running `machine`, with a lease of `lease_ms`,
/// a heartbeat every 100 ms and a poll every 50 ms.
pub(crate) async fn runtime(storage: Arc<Faulty>, machine: DynamicMachine, lease_ms: u64) -> Runtime {
    Runtime::builder()
        .shared_storage(storage)
        .register(machine)
        .policies(Policies {
            lease: Duration::from_millis(lease_ms),
            heartbeat: Duration::from_millis(100),
            poll_interval: Duration::from_millis(50),
            ..Policies::default()
        })
        .build()
        .await
        .expect("a runtime over the faulty store")
}

/// Waits up to ten seconds for the job to complete.
pub(crate) async fn completed(rt: &Runtime, id: JobId) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while status(rt, id).await != JobState::Completed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the job completes");
}

/// The job's lifecycle state.
pub(crate) async fn status(rt: &Runtime, id: JobId) -> JobState {
    rt.get_record(id)
        .await
        .ok()
        .flatten()
        .map_or(JobState::Failed, |record| record.status)
}

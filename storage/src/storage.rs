//! The [`Storage`] trait: what a backend must do, and what it promises.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::capabilities::Capabilities;
use crate::commit::{Commit, Committed};
use crate::error::StorageError;
use crate::events::StorageEvent;
use crate::model::{
    CancelOutcome, ClaimRequest, CountRow, DeleteOutcome, Heartbeat, HistoryEntry, Inserted, JobFilter, JobPage,
    JobRecord, LeaseToken, ListOrder, Millis, NewJob,
};
use crate::{JobId, JobState};

/// A backend that stores jobs and their history.
///
/// Every method is atomic: it happens entirely or not at all. A backend
/// proves it keeps these promises by passing the conformance suite in
/// [`testing`](crate::testing) (feature `"testing"`).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Inserts a job as `Pending`, with its submission history entry
    /// (seq 0, version 0, [`NewJob::submission_entry`]). If the job has an
    /// idempotency key that an existing job already has, nothing is written
    /// and that job's id is returned with `created: false`.
    ///
    /// # Errors
    /// [`StorageError::DuplicateId`] if the id is taken;
    /// [`StorageError::Invalid`] if [`NewJob::check`] refuses the job.
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError>;

    /// Inserts many jobs in one atomic write, with the same idempotency rule
    /// per job (also between jobs of the same batch). Results are in input
    /// order.
    ///
    /// # Errors
    /// As [`insert`](Self::insert); on error nothing is inserted.
    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError>;

    /// The job, or `None`.
    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError>;

    /// Jobs matching `filter` with ids greater than `after`, in id order, at
    /// most `limit` of them: [`list_ordered`](Self::list_ordered), oldest
    /// first.
    async fn list(&self, filter: &JobFilter, after: Option<JobId>, limit: usize) -> Result<JobPage, StorageError> {
        self.list_ordered(filter, after, limit, ListOrder::OldestFirst).await
    }

    /// Jobs matching `filter`, at most `limit` of them, in `order`, starting
    /// after the cursor `after` (a previous page's
    /// [`next`](JobPage::next)): ids greater than it oldest first, smaller
    /// than it newest first.
    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError>;

    /// Claims up to `limit` ready jobs of the requested machines in the
    /// requested queue, none if that queue is paused, in
    /// (priority, run_at, id) order: pending jobs whose `run_at` has come, and
    /// running jobs whose lease expired (their worker is presumed dead). Each
    /// becomes `Running` under a new lease with a fresh, strictly greater
    /// token, and its `attempts` grows by one. No job is handed to two
    /// claimers whose leases overlap in time.
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError>;

    /// Claims one job by id, whatever its `run_at` and whether or not its
    /// queue is paused (an operator runs it now): as [`claim`](Self::claim)
    /// does, if it is pending or its lease expired.
    /// Returns `None` when it is running under a live lease or finished.
    ///
    /// # Errors
    /// [`StorageError::NotFound`].
    async fn claim_job(
        &self,
        id: JobId,
        worker: &str,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Option<JobRecord>, StorageError>;

    /// Applies one commit: compare-and-set on the version, lease fencing (see
    /// [`Commit::lease`]), the columns its [`Outcome`](crate::Outcome)
    /// changes, a version bump and one history entry (seq = new version),
    /// all in one atomic write. Returns the updated job. The default writes
    /// it through [`commit_batch`](Self::commit_batch) and reads the job
    /// back, so what it returns may already show a later change (a claim);
    /// a backend that can read the job in the commit's own transaction
    /// overrides it to return the job exactly as written.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::VersionConflict`],
    /// [`StorageError::LeaseLost`], [`StorageError::JobRunning`]; the job is
    /// unchanged.
    async fn commit(&self, commit: Commit) -> Result<JobRecord, StorageError> {
        let id = commit.id;
        crate::model::only(self.commit_batch(std::slice::from_ref(&commit)).await?)?;
        self.get(id).await?.ok_or(StorageError::NotFound(id))
    }

    /// Applies many commits, each as [`commit`](Self::commit) does and on
    /// its own terms (one failing does not stop the others), ideally in one
    /// round trip or transaction, writing only what each outcome changes.
    /// Answers, in input order, what each caller cannot know from its own
    /// commit ([`Committed`]): the caller that made a commit from its copy
    /// of the job brings the copy up to date with
    /// [`JobRecord::committed`](crate::JobRecord::committed), so nothing of
    /// the job is read back.
    ///
    /// # Errors
    /// A failure of the whole call (the database is unreachable); per
    /// commit, the errors [`commit`](Self::commit) lists.
    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError>;

    /// Applies one commit and leaves the updated job in `record`, the
    /// caller's copy of it, from which the commit was made. A runtime calls
    /// this at every step of a running job. The default is
    /// [`commit_batch`](Self::commit_batch) of one, then
    /// [`JobRecord::committed`](crate::JobRecord::committed); a backend that
    /// keeps jobs in memory overrides it to update `record` in place.
    ///
    /// # Errors
    /// As [`commit`](Self::commit); the job is unchanged, and so is
    /// `record`.
    ///
    /// ```
    /// # use runekernel_storage::{Commit, InMemoryStorage, JobId, JobRecord, NewJob, Outcome, Storage, StateChange};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), runekernel_storage::StorageError> {
    /// let storage = InMemoryStorage::new();
    /// let id = JobId::new();
    /// storage.insert(NewJob::new(id, "m", "A", serde_json::json!({}))).await?;
    /// let mut record: JobRecord = storage.get(id).await?.expect("inserted");
    /// let to = StateChange { state: "B".into(), payload: serde_json::json!({ "n": 1 }), fingerprint: 0 };
    /// let commit = Commit::unleased(&record, 1, None, Outcome::Advanced { to, run_at: 1 });
    /// storage.commit_into(commit, &mut record).await?;
    /// assert_eq!((record.state.as_str(), record.version), ("B", 1));
    /// assert_eq!(Some(&record), storage.get(id).await?.as_ref());
    /// # Ok(())
    /// # }
    /// ```
    async fn commit_into(&self, commit: Commit, record: &mut JobRecord) -> Result<(), StorageError> {
        let committed = crate::model::only(self.commit_batch(std::slice::from_ref(&commit)).await?)?;
        record.committed(commit, committed);
        Ok(())
    }

    /// What the runtime may exploit of this backend beyond the contract;
    /// the default, nothing, suits any backend.
    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
    }

    /// The job's history, oldest first, gap-free from seq 0.
    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError>;

    /// Extends many held leases at once, each to `now + lease_ms`, and
    /// reports for each whether cancellation was requested. Each lease is
    /// extended on its own terms (one lost lease does not stop the others),
    /// ideally in one round trip or transaction: a runtime beats for every
    /// job it holds in one call. Results are in input order.
    ///
    /// # Errors
    /// A failure of the whole call (the database is unreachable); per job,
    /// [`StorageError::LeaseLost`] when its lease is no longer held.
    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError>;

    /// Extends one held lease: [`heartbeat_batch`](Self::heartbeat_batch)
    /// of one.
    ///
    /// # Errors
    /// As [`heartbeat_batch`](Self::heartbeat_batch).
    async fn heartbeat(
        &self,
        id: JobId,
        lease: LeaseToken,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Heartbeat, StorageError> {
        crate::model::only(self.heartbeat_batch(vec![(id, lease)], now, lease_ms).await?)
    }

    /// Hands a running job back: `Pending` again at `run_at = now`, lease
    /// cleared, the claim's attempt given back. No history entry (nothing
    /// happened to the job). Used by a graceful shutdown.
    ///
    /// # Errors
    /// [`StorageError::LeaseLost`] when the lease is no longer held.
    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError>;

    /// Cancels a job: a pending job becomes `Cancelled` at once (with a
    /// history entry whose error is `reason`, or `"cancelled"`); for a
    /// running job the request is recorded with `reason`
    /// ([`JobRecord::request_cancel`]: the first reason given stands) and its
    /// worker commits the cancellation, recording that reason; a finished
    /// job is left alone.
    ///
    /// # Errors
    /// [`StorageError::NotFound`].
    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError>;

    /// Deletes a finished job (completed, failed or cancelled) with its
    /// history, and frees its idempotency key. A job that has not finished
    /// is left alone: [`DeleteOutcome::NotFinished`].
    ///
    /// # Errors
    /// [`StorageError::NotFound`].
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError>;

    /// How many jobs there are per (machine, queue, state, lifecycle),
    /// sorted.
    async fn counts(&self) -> Result<Vec<CountRow>, StorageError>;

    /// Pauses queue `queue` (`paused: true`) or resumes it, for every
    /// process sharing the storage: no [`claim`](Self::claim) that starts
    /// after this returns takes a job of a paused queue, neither a pending
    /// one nor one whose lease expired; jobs already claimed run on. A
    /// queue needs no jobs to be paused, and pausing a paused queue (or
    /// resuming a running one) changes nothing. Returns whether the queue
    /// was paused before.
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError>;

    /// The paused queues, sorted.
    async fn paused_queues(&self) -> Result<Vec<String>, StorageError>;

    /// Deletes finished jobs (completed, failed, cancelled) last written
    /// before `before`, with their history. Returns how many were deleted.
    /// The default is [`prune_batch`](Self::prune_batch) of every finished
    /// lifecycle state, without a limit.
    async fn prune(&self, before: Millis) -> Result<u64, StorageError> {
        let mut pruned = 0;
        for status in JobState::FINISHED {
            pruned += self.prune_batch(status, before, usize::MAX).await?;
        }
        Ok(pruned)
    }

    /// Deletes at most `limit` jobs in the finished lifecycle state
    /// `status` that were last written before `before`, with their history,
    /// freeing their idempotency keys. Returns how many were deleted: fewer
    /// than `limit` when no more match. A pruner calls it again and again
    /// with a small `limit`, so that no call holds storage for long.
    ///
    /// # Errors
    /// [`StorageError::Invalid`] when `status` is not a finished state.
    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError>;

    /// Takes, or renews, the duty named `duty` for `owner` until
    /// `now + ttl_ms`, if no one holds it, its holder's time has run out
    /// (at or before `now`), or `owner` holds it already. Returns whether
    /// `owner` holds it now. Every process sharing the storage sees the same
    /// holder, so a duty a runtime does for all of them (pruning) is done by
    /// one at a time.
    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError>;

    /// Subscribes to change notifications. A backend shared by several
    /// processes reports the changes of all of them.
    fn subscribe(&self) -> broadcast::Receiver<StorageEvent>;

    /// Subscribes to [`StorageEvent::JobsReady`] alone: what a runtime's
    /// producer waits on. Receiving other events too is allowed (the
    /// default is [`subscribe`](Self::subscribe)); a backend that keeps
    /// them apart, as [`EventBus`](crate::EventBus) does, spares every
    /// commit a send to a subscriber that would ignore it.
    fn subscribe_ready(&self) -> broadcast::Receiver<StorageEvent> {
        self.subscribe()
    }
}

//! The persisted data model: what a stored job and its history look like, and
//! the requests the [`Storage`](crate::Storage) trait takes.
//!
//! Times are milliseconds since the Unix epoch ([`Millis`]), always supplied
//! by the caller, so a runtime with a manual clock drives storage
//! deterministically.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commit::Commit;
use crate::{JobId, JobState};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The queue of a job whose machine and submission name none.
pub const DEFAULT_QUEUE: &str = "default";

/// A fencing token: issued with every lease, strictly increasing per
/// backend. A commit or heartbeat must present the job's current token, so a
/// worker whose lease expired or was taken over cannot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseToken(pub u64);

/// A worker's hold on a running job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker that holds it.
    pub owner: String,
    /// The fencing token.
    pub token: LeaseToken,
    /// When it runs out unless extended by a heartbeat.
    pub expires_at: Millis,
}

/// A job to insert: [`NewJob::new`], then set what differs from the
/// defaults.
///
/// ```
/// use runekernel_storage::{JobId, NewJob};
///
/// let mut job = NewJob::new(JobId::new(), "order", "Created", serde_json::json!({"sku": "a"}));
/// job.priority = -1;
/// job.run_at = 1_700_000_000_000;
/// assert_eq!(job.max_attempts, 0); // the runtime's default
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewJob {
    /// Its id.
    pub id: JobId,
    /// The machine's name.
    pub machine: String,
    /// The queue it waits in: runtimes claim per queue, and a paused queue's
    /// jobs are not claimed.
    pub queue: String,
    /// The machine definition's fingerprint when the job was written.
    pub fingerprint: u64,
    /// The initial state's stored name.
    pub state: String,
    /// The state's fields as JSON.
    pub payload: Value,
    /// Lower runs first; 0 is the default.
    pub priority: i32,
    /// Not claimed before this time.
    pub run_at: Millis,
    /// Attempts allowed per step; 0 means the runtime's default.
    pub max_attempts: u32,
    /// A per-job step timeout in milliseconds, overriding the runtime's.
    pub timeout_ms: Option<u64>,
    /// At most one job is stored per key; inserting a second returns the first.
    pub idempotency_key: Option<String>,
    /// When it was submitted.
    pub created_at: Millis,
    /// Who asked for it (an admin API token's role, say), recorded as the
    /// worker of its submission entry in history; `None` for a job the
    /// application submitted itself.
    pub submitted_by: Option<String>,
}

impl NewJob {
    /// Job `id` of `machine` in `state` with `payload`; everything else at
    /// its default: queue [`DEFAULT_QUEUE`], fingerprint 0, priority 0, runnable from the epoch
    /// (`run_at` 0), the runtime's attempts and timeout, no idempotency key,
    /// `created_at` 0, no submitter.
    pub fn new(id: JobId, machine: impl Into<String>, state: impl Into<String>, payload: Value) -> Self {
        NewJob {
            id,
            machine: machine.into(),
            queue: DEFAULT_QUEUE.to_owned(),
            fingerprint: 0,
            state: state.into(),
            payload,
            priority: 0,
            run_at: 0,
            max_attempts: 0,
            timeout_ms: None,
            idempotency_key: None,
            created_at: 0,
            submitted_by: None,
        }
    }

    /// The submission entry (seq 0) of this job once inserted, naming
    /// [`submitted_by`](Self::submitted_by) as its worker.
    pub fn submission_entry(&self) -> HistoryEntry {
        submission(
            &self.state,
            self.payload.clone(),
            self.created_at,
            self.submitted_by.clone(),
        )
    }

    /// The most attempts per step a job may allow: what every backend can
    /// store (Postgres keeps it in an `int4`).
    pub const MAX_ATTEMPTS: u32 = i32::MAX.cast_unsigned();
    /// The longest per-job step timeout, in milliseconds: what every
    /// backend can store (a signed 64-bit column).
    pub const MAX_TIMEOUT_MS: u64 = i64::MAX.cast_unsigned();

    /// Checks what every backend checks before it stores the job: its
    /// numbers fit the columns that keep them.
    ///
    /// # Errors
    /// [`StorageError::Invalid`](crate::StorageError::Invalid) naming the
    /// job and the field, for `max_attempts` over [`Self::MAX_ATTEMPTS`] or
    /// `timeout_ms` over [`Self::MAX_TIMEOUT_MS`].
    pub fn check(&self) -> Result<(), crate::StorageError> {
        if self.max_attempts > Self::MAX_ATTEMPTS {
            return Err(crate::StorageError::Invalid(format!(
                "job {}: max_attempts {} is more than the {} a job may allow",
                self.id,
                self.max_attempts,
                Self::MAX_ATTEMPTS
            )));
        }
        match self.timeout_ms {
            Some(ms) if ms > Self::MAX_TIMEOUT_MS => Err(crate::StorageError::Invalid(format!(
                "job {}: timeout_ms {ms} is more than the {} a job may set",
                self.id,
                Self::MAX_TIMEOUT_MS
            ))),
            _ => Ok(()),
        }
    }
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// The stored job's id: the new one, or the existing one with the same
    /// idempotency key.
    pub id: JobId,
    /// False when an existing job with the same idempotency key was returned.
    pub created: bool,
}

/// A stored job, as backends read it (a backend makes a new one with
/// [`JobRecord::from_new`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// The machine's name.
    pub machine: String,
    /// The queue it waits in. (A job stored before queues existed reads
    /// as in [`DEFAULT_QUEUE`].)
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The fingerprint of the machine definition it was last written with.
    pub fingerprint: u64,
    /// The current machine state's stored name.
    pub state: String,
    /// The current state's fields as JSON.
    pub payload: Value,
    /// The lifecycle state.
    pub status: JobState,
    /// Lower runs first.
    pub priority: i32,
    /// When it may next be claimed.
    pub run_at: Millis,
    /// Attempts of the current state's step so far (a claim adds one; a
    /// state change resets it).
    pub attempts: u32,
    /// Attempts allowed per step.
    pub max_attempts: u32,
    /// Per-job step timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The lease, while running.
    pub lease: Option<Lease>,
    /// Bumped by every commit; equal to the last history entry's `seq`.
    pub version: u64,
    /// The idempotency key it was inserted with.
    pub idempotency_key: Option<String>,
    /// Cancellation was requested while it ran.
    pub cancel_requested: bool,
    /// The reason given with that request, which the worker records when it
    /// commits the cancellation (`None` if none was given, or none stands).
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// When it was submitted.
    pub created_at: Millis,
    /// When it was last written.
    pub updated_at: Millis,
    /// The most recent error of a failed step.
    pub last_error: Option<String>,
}

/// One entry of a job's history: the submission, a transition, or a
/// lifecycle change (retry, failure, cancellation, admin change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// 0 for the submission, then 1, 2, ... with no gaps.
    pub seq: u64,
    /// The state name before; `None` for the submission.
    pub from: Option<String>,
    /// The state name after (equal to `from` for a lifecycle-only entry).
    pub to: String,
    /// The lifecycle state after this entry.
    pub status: JobState,
    /// Why, for a failed step, a retry or a cancellation.
    pub error: Option<String>,
    /// When it was committed.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub at: Millis,
    /// The attempt of the step that produced it (0 for the submission).
    pub attempt: u32,
    /// Who made it: the worker that committed it, whoever asked for an
    /// operator's change, or, for the submission, whoever asked for the job
    /// ([`NewJob::submitted_by`]); `None` when nobody was named.
    pub worker: Option<String>,
    /// The machine state's fields after this entry, so a replay reproduces
    /// the job's data and not just its state names.
    pub payload: Value,
}

/// A request for a batch of ready jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    /// The claiming worker, recorded as lease owner.
    pub worker: String,
    /// Only jobs of these machines are claimed.
    pub machines: Vec<String>,
    /// Only jobs of this queue are claimed, and none while it is paused
    /// (see [`Storage::set_queue_paused`](crate::Storage::set_queue_paused)).
    pub queue: String,
    /// At most this many jobs.
    pub limit: usize,
    /// The current time: jobs with `run_at <= now` are ready, and running
    /// jobs whose lease expired at or before it are reclaimed.
    pub now: Millis,
    /// How long the new leases last.
    pub lease_ms: u64,
}

/// The outcome of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The lease's new expiry.
    pub expires_at: Millis,
    /// Whether cancellation of the job was requested.
    pub cancel_requested: bool,
}

/// The outcome of a cancellation.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// The job was pending and is now cancelled.
    Cancelled(Box<JobRecord>),
    /// The job is running; its worker is asked to stop and will commit the
    /// cancellation.
    Requested,
    /// The job had already finished with this lifecycle state.
    AlreadyFinished(JobState),
}

/// The outcome of a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The job and its history are gone.
    Deleted,
    /// The job has not finished (it is in this lifecycle state): nothing
    /// was deleted.
    NotFinished(JobState),
}

/// Which jobs to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this machine.
    pub machine: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this machine state (by stored name).
    pub state: Option<String>,
    /// Only this lifecycle state.
    pub status: Option<JobState>,
}

impl JobFilter {
    /// Whether a job of this machine, queue, state and lifecycle matches.
    pub fn matches(&self, machine: &str, queue: &str, state: &str, status: JobState) -> bool {
        self.machine.as_deref().is_none_or(|m| m == machine)
            && self.queue.as_deref().is_none_or(|q| q == queue)
            && self.state.as_deref().is_none_or(|s| s == state)
            && self.status.is_none_or(|s| s == status)
    }
}

/// Which end of the id order a listing starts from. Generated ids grow
/// with time, so this is also creation order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ListOrder {
    /// Smallest id first; a page's cursor `after` skips ids up to it.
    #[default]
    OldestFirst,
    /// Greatest id first; a page's cursor `after` skips ids down to it.
    NewestFirst,
}

/// One page of a listing, ordered by id (which is creation order for
/// generated ids).
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobRecord>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<JobId>,
}

impl JobPage {
    /// The page of at most `limit` jobs out of `fetched`, which holds the
    /// page in order and, when more jobs follow it, at least one more (a
    /// backend fetches `limit + 1` to know whether a next page exists).
    pub fn from_fetched(mut fetched: Vec<JobRecord>, limit: usize) -> JobPage {
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let next = if more { fetched.last().map(|j| j.id) } else { None };
        JobPage { jobs: fetched, next }
    }
}

/// How many jobs share a machine, queue, state and lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CountRow {
    /// The machine.
    pub machine: String,
    /// The queue.
    pub queue: String,
    /// The machine state.
    pub state: String,
    /// The lifecycle state.
    pub status: JobState,
    /// How many.
    pub count: u64,
}

impl CountRow {
    /// Counts records per (machine, queue, state, lifecycle), sorted: what
    /// [`Storage::counts`](crate::Storage::counts) returns, for backends
    /// that keep records in Rust.
    pub fn tally<'a>(records: impl IntoIterator<Item = &'a JobRecord>) -> Vec<CountRow> {
        Self::tally_names(records.into_iter().map(|r| JobNames {
            machine: &r.machine,
            queue: &r.queue,
            state: &r.state,
            status: r.status,
        }))
    }

    /// [`CountRow::tally`] over the names of each job.
    pub fn tally_names<'a>(jobs: impl IntoIterator<Item = JobNames<'a>>) -> Vec<CountRow> {
        let mut counts: std::collections::BTreeMap<JobNames<'a>, u64> = std::collections::BTreeMap::new();
        for key in jobs {
            *counts.entry(key).or_default() += 1;
        }
        counts
            .into_iter()
            .map(
                |(
                    JobNames {
                        machine,
                        queue,
                        state,
                        status,
                    },
                    count,
                )| CountRow {
                    machine: machine.to_owned(),
                    queue: queue.to_owned(),
                    state: state.to_owned(),
                    status,
                    count,
                },
            )
            .collect()
    }
}

/// What [`CountRow`] groups jobs by, borrowed from one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobNames<'a> {
    /// The machine.
    pub machine: &'a str,
    /// The queue.
    pub queue: &'a str,
    /// The machine state.
    pub state: &'a str,
    /// The lifecycle state.
    pub status: JobState,
}

impl JobRecord {
    /// A record of job `id` with every other field empty, to read into.
    pub(crate) fn blank(id: JobId) -> JobRecord {
        JobRecord {
            id,
            machine: String::new(),
            queue: String::new(),
            fingerprint: 0,
            state: String::new(),
            payload: Value::Null,
            status: JobState::Pending,
            priority: 0,
            run_at: 0,
            attempts: 0,
            max_attempts: 0,
            timeout_ms: None,
            lease: None,
            version: 0,
            idempotency_key: None,
            cancel_requested: false,
            cancel_reason: None,
            created_at: 0,
            updated_at: 0,
            last_error: None,
        }
    }

    /// The record of a freshly inserted job.
    pub fn from_new(job: &NewJob) -> Self {
        JobRecord {
            id: job.id,
            machine: job.machine.clone(),
            queue: job.queue.clone(),
            fingerprint: job.fingerprint,
            state: job.state.clone(),
            payload: job.payload.clone(),
            status: JobState::Pending,
            priority: job.priority,
            run_at: job.run_at,
            attempts: 0,
            max_attempts: job.max_attempts,
            timeout_ms: job.timeout_ms,
            lease: None,
            version: 0,
            idempotency_key: job.idempotency_key.clone(),
            cancel_requested: false,
            cancel_reason: None,
            created_at: job.created_at,
            updated_at: job.created_at,
            last_error: None,
        }
    }

    /// Whether a claim at `now` may take this job: pending and due, or
    /// running with an expired lease.
    pub fn is_claimable(&self, now: Millis) -> bool {
        match self.status {
            JobState::Pending => self.run_at <= now,
            JobState::Running => self.lease.as_ref().is_some_and(|l| l.expires_at <= now),
            _ => false,
        }
    }

    /// Checks that `lease` may write to this job at `now`.
    ///
    /// # Errors
    /// [`StorageError::LeaseLost`](crate::StorageError::LeaseLost) when the
    /// job is not running under that token, or the lease has expired.
    pub fn check_lease(&self, lease: LeaseToken, now: Millis) -> Result<(), crate::StorageError> {
        match &self.lease {
            Some(current) if self.status == JobState::Running && current.token == lease && current.expires_at > now => {
                Ok(())
            }
            _ => Err(crate::StorageError::LeaseLost {
                id: self.id,
                token: lease,
            }),
        }
    }

    /// Checks a commit against this record: version, then lease.
    ///
    /// # Errors
    /// [`StorageError::VersionConflict`](crate::StorageError::VersionConflict),
    /// [`StorageError::LeaseLost`](crate::StorageError::LeaseLost), or
    /// [`StorageError::JobRunning`](crate::StorageError::JobRunning) for a
    /// lease-less commit on a running job.
    pub fn check_commit(&self, commit: &Commit) -> Result<(), crate::StorageError> {
        self.check_fence(commit.expected_version, commit.lease, commit.now)
    }

    /// [`check_commit`](Self::check_commit) of a commit that expects
    /// `version`, made under `lease` (if any) at `now`.
    ///
    /// # Errors
    /// As [`check_commit`](Self::check_commit).
    pub fn check_fence(&self, version: u64, lease: Option<LeaseToken>, now: Millis) -> Result<(), crate::StorageError> {
        if self.version != version {
            return Err(crate::StorageError::VersionConflict {
                id: self.id,
                expected: version,
                actual: self.version,
            });
        }
        match lease {
            Some(token) => self.check_lease(token, now),
            None if self.status == JobState::Running => Err(crate::StorageError::JobRunning { id: self.id }),
            None => Ok(()),
        }
    }

    /// Applies a checked commit and returns the history entry it appends.
    /// Shared by the backends that keep records in Rust (in-memory,
    /// RocksDB); SQL backends do the same in SQL, following the same
    /// [`Outcome`](crate::Outcome) rules.
    pub fn apply(&mut self, commit: &Commit) -> HistoryEntry {
        let (from, attempt) = (self.state.clone(), self.attempts);
        self.apply_to_record(commit);
        HistoryEntry {
            seq: self.version,
            from: Some(from),
            to: self.state.clone(),
            status: self.status,
            error: commit.outcome.error().map(str::to_owned),
            at: commit.now,
            attempt,
            worker: commit.worker.clone(),
            payload: self.payload.clone(),
        }
    }

    /// Applies a checked commit to the record alone, for a backend that
    /// builds the history entry in its own form; [`apply`](Self::apply)
    /// also returns the entry. The entry records the attempts counter as it
    /// was before.
    pub fn apply_to_record(&mut self, commit: &Commit) {
        let outcome = &commit.outcome;
        if let Some(change) = outcome.change() {
            self.state.clone_from(&change.state);
            self.payload = change.payload.clone();
            self.fingerprint = change.fingerprint;
        }
        self.status = outcome.status();
        if let Some(run_at) = outcome.run_at() {
            self.run_at = run_at;
        }
        self.attempts = outcome.attempts().apply(self.attempts);
        self.version += 1;
        self.updated_at = commit.now;
        if let Some(error) = outcome.error() {
            error.clone_into(self.last_error.get_or_insert_with(String::new));
        }
        // The one outcome that stays running keeps its lease, extended.
        match (outcome.lease_until(), self.lease.as_mut()) {
            (Some(until), Some(lease)) => lease.expires_at = until,
            (Some(_), None) => {}
            (None, _) => self.lease = None,
        }
        // A cancellation request stands until the job finishes: a worker
        // that commits a retry without having seen it leaves it for the
        // next claim.
        if self.status.is_finished() {
            self.cancel_requested = false;
            self.cancel_reason = None;
        }
    }

    /// Takes the job for a worker: `Running` under a new lease, one more
    /// attempt. The caller has checked [`is_claimable`](Self::is_claimable).
    pub fn claim(&mut self, worker: &str, token: LeaseToken, now: Millis, lease_ms: u64) {
        self.status = JobState::Running;
        self.attempts += 1;
        self.updated_at = now;
        self.lease = Some(Lease {
            owner: worker.to_owned(),
            token,
            expires_at: add_ms(now, lease_ms),
        });
    }

    /// Extends a checked lease to `now + lease_ms`; returns the heartbeat.
    pub fn extend_lease(&mut self, now: Millis, lease_ms: u64) -> Heartbeat {
        let expires_at = add_ms(now, lease_ms);
        if let Some(lease) = self.lease.as_mut() {
            lease.expires_at = expires_at;
        }
        Heartbeat {
            expires_at,
            cancel_requested: self.cancel_requested,
        }
    }

    /// Hands a checked, running job back: pending now, the claim's attempt
    /// given back.
    pub fn release(&mut self, now: Millis) {
        self.status = JobState::Pending;
        self.lease = None;
        self.run_at = now;
        self.attempts = self.attempts.saturating_sub(1);
        self.updated_at = now;
    }

    /// Records a request to cancel this running job, with `reason` if one is
    /// given; the first reason given stands.
    pub fn request_cancel(&mut self, reason: Option<String>) {
        self.cancel_requested = true;
        if self.cancel_reason.is_none() {
            self.cancel_reason = reason;
        }
    }
}

/// The submission entry (seq 0) of a job submitted in `state` with
/// `payload` at `at` by `by`.
pub(crate) fn submission(state: &str, payload: Value, at: Millis, by: Option<String>) -> HistoryEntry {
    HistoryEntry {
        seq: 0,
        from: None,
        to: state.to_owned(),
        status: JobState::Pending,
        error: None,
        at,
        attempt: 0,
        worker: by,
        payload,
    }
}

/// [`DEFAULT_QUEUE`], owned: the queue of a stored job that names none.
pub(crate) fn default_queue() -> String {
    DEFAULT_QUEUE.to_owned()
}

/// `now + ms`, saturating.
pub(crate) fn add_ms(now: Millis, ms: u64) -> Millis {
    now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The one result of a batch call made with one item (a commit or a
/// heartbeat sent through its backend's batch path).
pub(crate) fn only<T>(results: Vec<Result<T, crate::StorageError>>) -> Result<T, crate::StorageError> {
    results
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(crate::StorageError::backend("a batch of one returned no result")))
}

/// Runs `commit` on each commit of a batch written as one unit (SQLite,
/// RocksDB). A commit that fails its checks has written nothing and fails
/// alone; a database error fails the whole batch, which the caller undoes.
pub(crate) fn commit_each<C, T>(
    commits: &[C],
    mut commit: impl FnMut(&C) -> Result<T, crate::StorageError>,
) -> Result<Vec<Result<T, crate::StorageError>>, crate::StorageError> {
    let mut results = Vec::with_capacity(commits.len());
    for one in commits {
        match commit(one) {
            Err(error @ crate::StorageError::Backend(_)) => return Err(error),
            result => results.push(result),
        }
    }
    Ok(results)
}

/// The commit that cancels a pending job (shared by every backend's
/// `cancel`).
pub fn cancel_commit(job: &JobRecord, now: Millis, reason: Option<String>) -> Commit {
    let reason = reason.unwrap_or_else(|| "cancelled".to_owned());
    Commit::unleased(job, now, None, crate::Outcome::Cancelled { reason })
}

//! [`Runtime`]: submits jobs, runs them on tokio one committed transition at
//! a time, and answers questions about them.
//!
//! The pieces, one file each: `builder` (configuration), `queues` (the
//! queues served, one producer each), `producer` (the loop that claims a
//! queue's ready jobs for free worker slots), `slots` (the worker slots of
//! the runtime and of a queue with a limit), `claim` (one claim),
//! `bulk` (changes to every job a filter matches, a page at a time),
//! `pool` (the tasks that run them), `executor` (runs a job's
//! steps and classifies outcomes), `hooks` (what runs around every step),
//! `lease` (heartbeats), `clock` and `ids` (real or deterministic),
//! `registry` (the registered machines, by name), `verify` (history
//! replay), `policy` (defaults), `view` (a job as its machine's type sees
//! it).
//!
//! The runtime sits above the machine layer and imports from it, never the
//! other way: `machine/` (definitions, the codec, the transition check),
//! `handler.rs`, `dynamic.rs`, `registration.rs` (a machine as the runtime
//! drives it: stored states in, stored states out), `job.rs` and
//! `submit_options.rs` know nothing of the runtime.

mod builder;
mod bulk;
mod claim;
pub(crate) mod clock;
mod completer;
mod error;
mod executor;
mod hooks;
mod ids;
mod lease;
mod metrics;
mod periodic;
mod policy;
mod pool;
mod producer;
mod queues;
mod registry;
mod retention;
mod slots;
mod termination;
#[cfg(test)]
mod test_storage;
mod verify;
mod view;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::Rng;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::task::TaskTracker;

use crate::context::Resources;
use crate::job::Job;
use crate::machine::{MachineDef, StateMachine};
use crate::signal::Signal;
use crate::storage::{
    CancelOutcome, HistoryEntry, JobFilter, JobId, JobPage, JobRecord, JobState, ListOrder, Millis, NewJob, Storage,
    StorageEvent,
};

pub use crate::registration::Registration;
pub use crate::submit_options::SubmitOptions;
pub use builder::RuntimeBuilder;
pub use bulk::BulkPage;
pub use error::RuntimeError;
pub use hooks::{StepHook, StepInfo, StepOutcome};
pub use metrics::{MachineMetrics, LATENCY_BUCKETS};
pub use periodic::{PeriodicInfo, Schedule, ScheduleError};
pub use policy::{Backoff, Policies, Retention};
pub use queues::QueueInfo;
pub use termination::termination;
pub use view::JobView;

use clock::{millis, Clock};
use ids::IdSource;
use lease::{ActiveJobs, LeaseHealth};
use registry::Registry;

/// A `Result` with a [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// The job runtime. Cheap to clone; clones share everything.
///
/// ```
/// use runekernel::prelude::*;
///
/// #[derive(StateMachine, Debug, Clone, PartialEq)]
/// enum Greeting {
///     #[state(initial)]
///     #[transition(to = Sent)]
///     Draft { to: String },
///     #[state(terminal)]
///     Sent { text: String },
/// }
///
/// struct Mailer;
///
/// impl GreetingHandler for Mailer {
///     async fn draft(&self, _ctx: &JobContext, to: String) -> Result<GreetingDraftNext, StepError> {
///         Ok(GreetingDraftNext::Sent { text: format!("hello, {to}") })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), runekernel::RuntimeError> {
/// let rt = Runtime::builder().register(Greeting::handler(Mailer)).build().await?;
/// let id = rt.submit(Greeting::Draft { to: "rune".into() }).await?;
/// let done = rt.wait::<Greeting>(id).await?;
/// assert_eq!(done.status, JobState::Completed);
/// assert_eq!(done.state, Greeting::Sent { text: "hello, rune".into() });
/// assert_eq!(rt.history(id).await?.len(), 2);
/// rt.shutdown().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// What every part of a runtime shares.
pub(crate) struct Inner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) registry: Registry,
    pub(crate) policies: Policies,
    pub(crate) resources: Arc<Resources>,
    pub(crate) clock: Clock,
    pub(crate) worker_id: String,
    pub(crate) active: ActiveJobs,
    pub(crate) lease_health: LeaseHealth,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Called around every step: the `step` span, the metrics, then the
    /// builder's.
    pub(crate) hooks: hooks::Hooks,
    /// Raised by `shutdown`: stop claiming, hand jobs back after this step.
    pub(crate) stopping: Signal,
    /// Raised when shutdown has finished: background tasks end.
    pub(crate) closed: Signal,
    /// The queues this runtime claims from, each with its producer's
    /// wake-up.
    pub(crate) queues: queues::ServedQueues,
    /// Batches commits when the storage gains from it; `None` otherwise,
    /// and in deterministic mode, where steps commit one by one in the
    /// caller's task.
    pub(crate) completer: Option<completer::Completer>,
    /// The periodic jobs this runtime submits.
    pub(crate) periodic: periodic::PeriodicJobs,
    ids: IdSource,
    rng: Mutex<StdRng>,
    deterministic: bool,
    tasks: TaskTracker,
    shutdown_timeout: Duration,
}

impl Inner {
    /// The backoff before the next attempt, with jitter from the runtime's
    /// (seeded, in deterministic mode) generator.
    pub(crate) fn backoff_delay(&self, attempt: u32) -> Duration {
        let position = self.rng.lock().unwrap_or_else(PoisonError::into_inner).random::<f64>();
        self.policies.backoff.delay(attempt, position)
    }

    /// Wakes the producer of `queue` at `run_at`, when a job of it put back
    /// for later comes due (no background producer runs in deterministic
    /// mode, and none for a queue this runtime does not serve).
    pub(crate) fn wake_at(self: &Arc<Self>, queue: &str, run_at: Millis) {
        if self.deterministic || run_at <= self.clock.now() || self.queues.get(queue).is_none() {
            return;
        }
        let rt = Arc::clone(self);
        let queue = queue.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                () = rt.clock.sleep_until(run_at) => {
                    if let Some(served) = rt.queues.get(&queue) {
                        served.wake.notify_one();
                    }
                }
                () = rt.closed.raised() => {}
            }
        });
    }

    /// A claim of up to `limit` jobs of the registered machines in `queue`
    /// for this runtime's worker, under a lease of the policy's length.
    pub(crate) fn claim_request(&self, queue: &str, limit: usize) -> crate::storage::ClaimRequest {
        crate::storage::ClaimRequest {
            worker: self.worker_id.clone(),
            machines: self.registry.names().to_vec(),
            queue: queue.to_owned(),
            limit,
            now: self.clock.now(),
            lease_ms: self.lease_ms(),
        }
    }

    /// The lease a claim or heartbeat asks for, in milliseconds.
    pub(crate) fn lease_ms(&self) -> u64 {
        self.policies.lease.as_millis() as u64
    }

    /// Commits through the completer's batches, or directly, and leaves
    /// the job after in `record` (see `Storage::commit_into`).
    /// Storage's own future when there is no completer: no wrapper for the
    /// commit (about 200 bytes) to be moved into at every step.
    pub(crate) fn commit_into<'a>(
        &'a self,
        commit: crate::storage::Commit,
        record: &'a mut JobRecord,
    ) -> futures::future::BoxFuture<'a, Result<(), crate::storage::StorageError>> {
        match &self.completer {
            Some(completer) => Box::pin(completer.commit_into(commit, record)),
            None => self.storage.commit_into(commit, record),
        }
    }

    fn machine_def(&self, name: &str) -> Result<&MachineDef> {
        self.registry
            .get(name)
            .map(|m| m.definition())
            .ok_or_else(|| RuntimeError::UnknownMachine(name.to_owned()))
    }
}

impl Runtime {
    /// Starts configuring a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }

    /// A runtime with in-memory storage, default workers and policies, and
    /// only the lifecycle machine of untyped jobs registered. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`RuntimeError::Config`] outside a tokio runtime.
    pub fn new() -> Result<Self> {
        RuntimeBuilder::new().start()
    }

    /// The storage this runtime uses.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The definitions of the registered machines, in registration order.
    pub fn machines(&self) -> Vec<&MachineDef> {
        self.inner.registry.definitions().collect()
    }

    /// The registered machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&MachineDef> {
        self.inner.registry.get(name).map(|m| m.definition())
    }

    /// The runtime's current time (the manual clock in deterministic mode).
    pub fn now(&self) -> SystemTime {
        clock::system_time(self.inner.clock.now())
    }

    // ----- submitting -----

    /// Submits a job that starts in `state`, with default options.
    ///
    /// # Errors
    /// [`RuntimeError::NotInitial`] when `state` is not the machine's initial
    /// state; storage errors.
    pub async fn submit<M: StateMachine>(&self, state: M) -> Result<JobId> {
        self.submit_with(state, SubmitOptions::default()).await
    }

    /// Submits a job with options (priority, delay, limits, idempotency key).
    /// With an idempotency key that an existing job already has, nothing is
    /// submitted and that job's id is returned.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub async fn submit_with<M: StateMachine>(&self, state: M, options: SubmitOptions) -> Result<JobId> {
        let job = self.new_typed(&state, &options, self.inner.clock.now())?;
        Ok(self.inner.storage.insert(job).await?.id)
    }

    /// Submits many jobs in one batched write, with one submission time
    /// (`created_at`, and `run_at`: they are ready at once). Returns their
    /// ids in order.
    ///
    /// # Errors
    /// As [`submit`](Self::submit); on error nothing is submitted.
    pub async fn submit_many<M: StateMachine>(&self, states: impl IntoIterator<Item = M>) -> Result<Vec<JobId>> {
        let options = SubmitOptions::default();
        // One submission time for the batch: the jobs are submitted together.
        let now = self.inner.clock.now();
        let jobs = states
            .into_iter()
            .map(|state| self.new_typed(&state, &options, now))
            .collect::<Result<Vec<_>>>()?;
        let inserted = self.inner.storage.insert_batch(jobs).await?;
        Ok(inserted.into_iter().map(|i| i.id).collect())
    }

    /// Submits an untyped [`Job`] to its dynamic machine, starting in that
    /// machine's initial state.
    ///
    /// # Errors
    /// [`RuntimeError::UnknownMachine`] when its machine is not registered.
    pub async fn submit_job(&self, job: Job) -> Result<JobId> {
        let def = self.inner.machine_def(&job.machine)?;
        let new = self.new_job(
            def,
            def.initial().name.clone(),
            serde_json::Value::Object(job.data),
            &job.options,
            self.inner.clock.now(),
        )?;
        Ok(self.inner.storage.insert(new).await?.id)
    }

    /// Submits a stored state (name and JSON payload) to a registered machine:
    /// the untyped form of [`submit_with`](Self::submit_with), used by the
    /// admin API.
    ///
    /// # Errors
    /// [`RuntimeError::UnknownMachine`], [`RuntimeError::NotInitial`], or a
    /// decode error when the payload does not fit the state.
    pub async fn submit_stored(
        &self,
        machine: &str,
        state: &str,
        payload: serde_json::Value,
        options: SubmitOptions,
    ) -> Result<JobId> {
        let erased = self
            .inner
            .registry
            .get(machine)
            .ok_or_else(|| RuntimeError::UnknownMachine(machine.to_owned()))?;
        let def = erased.definition();
        if def.initial().name != state {
            return Err(RuntimeError::NotInitial {
                machine: machine.to_owned(),
                state: state.to_owned(),
                initial: def.initial().name.clone(),
            });
        }
        erased
            .check_stored(state, &payload)
            .map_err(|e| RuntimeError::Encode(Box::new(e)))?;
        let job = self.new_job(def, state.to_owned(), payload, &options, self.inner.clock.now())?;
        Ok(self.inner.storage.insert(job).await?.id)
    }

    /// The stored form of a new job of `M` that starts in `state`, with
    /// `options`, as [`submit_with`](Self::submit_with) would insert it now:
    /// for inserting it elsewhere, as in an application's own Postgres
    /// transaction (`PostgresStorage::insert_in`), so that the job exists
    /// if and only if that transaction commits.
    ///
    /// # Errors
    /// As [`submit_with`](Self::submit_with), but for storage errors.
    pub fn prepare_job<M: StateMachine>(&self, state: M, options: SubmitOptions) -> Result<NewJob> {
        self.new_typed(&state, &options, self.inner.clock.now())
    }

    /// The new job that starts in `state`, submitted at `now`.
    fn new_typed<M: StateMachine>(&self, state: &M, options: &SubmitOptions, now: Millis) -> Result<NewJob> {
        let def = M::definition();
        if !state.is_initial() {
            return Err(RuntimeError::NotInitial {
                machine: M::NAME.to_owned(),
                state: state.state_name().to_owned(),
                initial: def.initial().name.clone(),
            });
        }
        let encoded = state.encode().map_err(|e| RuntimeError::Encode(Box::new(e)))?;
        self.new_job(def, encoded.state.to_owned(), encoded.payload, options, now)
    }

    /// The new job of machine `def` in `state` with `payload`, submitted at
    /// `now`.
    ///
    /// # Errors
    /// [`RuntimeError::PayloadTooDeep`] for a payload that would not read
    /// back once stored.
    fn new_job(
        &self,
        def: &MachineDef,
        state: String,
        payload: serde_json::Value,
        options: &SubmitOptions,
        now: Millis,
    ) -> Result<NewJob> {
        check_depth(def.name(), &state, &payload)?;
        let run_at = match (options.run_at, options.delay) {
            (Some(at), _) => at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            (None, Some(delay)) => now.saturating_add(millis(delay)),
            (None, None) => now,
        };
        let mut job = NewJob::new(self.inner.ids.next(), def.name(), state, payload);
        job.fingerprint = def.fingerprint().0;
        job.priority = options.priority;
        job.run_at = run_at;
        job.max_attempts = options.max_attempts.unwrap_or(self.inner.policies.max_attempts).max(1);
        // A timeout past what a store keeps is refused by the insert.
        job.timeout_ms = options
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        job.idempotency_key = options.idempotency_key.clone();
        job.submitted_by = options.submitted_by.clone();
        // Written into the string `NewJob::new` made for the default queue,
        // whose room fits most names: no second string per job.
        checked_queue(options.queue.as_deref().unwrap_or(def.queue()))?.clone_into(&mut job.queue);
        job.created_at = now;
        Ok(job)
    }

    // ----- reading -----

    /// The job, typed; `None` if there is no such job.
    ///
    /// # Errors
    /// [`RuntimeError::WrongMachine`] for another machine's job;
    /// [`RuntimeError::Decode`] when the stored state no longer fits `M`.
    pub async fn get<M: StateMachine>(&self, id: JobId) -> Result<Option<JobView<M>>> {
        match self.inner.storage.get(id).await? {
            None => Ok(None),
            Some(record) => view(&record).map(Some),
        }
    }

    /// The job as stored (state name and JSON payload), whatever its machine.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get_record(&self, id: JobId) -> Result<Option<JobRecord>> {
        Ok(self.inner.storage.get(id).await?)
    }

    /// Waits until the job is completed, failed or cancelled, and returns it.
    /// Woken by storage notifications, not by polling. In deterministic mode
    /// it first runs every ready step ([`run_until_idle`](Self::run_until_idle)).
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; in deterministic mode
    /// [`RuntimeError::Stalled`] when the job cannot finish without the clock
    /// moving; as [`get`](Self::get).
    pub async fn wait<M: StateMachine>(&self, id: JobId) -> Result<JobView<M>> {
        let record = self.wait_record(id).await?;
        view(&record)
    }

    /// [`wait`](Self::wait), untyped.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn wait_record(&self, id: JobId) -> Result<JobRecord> {
        if self.inner.deterministic {
            self.run_until_idle().await?;
            let record = self.inner.storage.get(id).await?.ok_or(RuntimeError::NotFound(id))?;
            return if record.status.is_finished() {
                Ok(record)
            } else {
                Err(RuntimeError::Stalled {
                    id,
                    status: record.status,
                })
            };
        }
        let mut events = self.inner.storage.subscribe();
        loop {
            let record = self.inner.storage.get(id).await?.ok_or(RuntimeError::NotFound(id))?;
            if record.status.is_finished() {
                return Ok(record);
            }
            // Wait for this job to change. The timeout is only a safety net
            // for backends that cannot announce other processes' changes.
            let changed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match events.recv().await {
                        Ok(StorageEvent::JobChanged(changed)) if changed == id => return,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return,
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            });
            let _ = changed.await;
        }
    }

    /// The job's history, oldest first: the submission, then one entry per
    /// transition or lifecycle change.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>> {
        Ok(self.inner.storage.history(id).await?)
    }

    /// Jobs matching `filter`, in id order, `limit` per page after the
    /// cursor `after`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self, filter: &JobFilter, after: Option<JobId>, limit: usize) -> Result<JobPage> {
        Ok(self.inner.storage.list(filter, after, limit).await?)
    }

    /// Jobs matching `filter`, `limit` per page, in `order` (newest first
    /// for an operator's view), after the cursor `after`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage> {
        Ok(self.inner.storage.list_ordered(filter, after, limit, order).await?)
    }

    /// Replays the job's history through its machine's transitions (guards
    /// included) and checks that it reproduces the stored job.
    ///
    /// # Errors
    /// [`RuntimeError::Replay`] naming the first history entry that does not
    /// fit, and why.
    pub async fn verify(&self, id: JobId) -> Result<()> {
        verify::verify(&self.inner, id).await
    }

    /// Step counts and latencies per registered machine, since this runtime
    /// started.
    pub fn metrics(&self) -> Vec<MachineMetrics> {
        self.inner.metrics.snapshot()
    }

    /// How many heartbeats failed since this runtime started: calls that
    /// failed as a whole, and single jobs' beats that failed for another
    /// reason than a lost lease. Each is retried, and logged.
    pub fn heartbeat_failures(&self) -> u64 {
        self.inner.lease_health.failures()
    }

    /// How many jobs there are per machine, state and lifecycle state.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn counts(&self) -> Result<Vec<crate::storage::CountRow>> {
        Ok(self.inner.storage.counts().await?)
    }

    // ----- acting -----

    /// Moves a job to `state` by hand (an operator's decision), only along a
    /// declared transition and with its guard. The job must not be running.
    /// A pending job keeps its `run_at`; a failed or cancelled job moved this
    /// way runs again at once. The history entry records `admin` as its
    /// worker.
    ///
    /// # Errors
    /// [`RuntimeError::Transition`] for a move the machine does not allow;
    /// [`RuntimeError::JobRunning`]; [`RuntimeError::NotFound`].
    pub async fn set_state<M: StateMachine>(&self, id: JobId, state: M) -> Result<JobRecord> {
        let encoded = state.encode().map_err(|e| RuntimeError::Encode(Box::new(e)))?;
        self.set_stored_state(id, encoded.state, encoded.payload).await
    }

    /// [`set_state`](Self::set_state) with a stored state (name and payload).
    ///
    /// # Errors
    /// As [`set_state`](Self::set_state); [`RuntimeError::Encode`] when the
    /// payload does not fit the state.
    pub async fn set_stored_state(&self, id: JobId, state: &str, payload: serde_json::Value) -> Result<JobRecord> {
        self.set_stored_state_by(id, state, payload, "admin").await
    }

    /// [`set_stored_state`](Self::set_stored_state), recording `who` as the
    /// history entry's worker.
    pub(crate) async fn set_stored_state_by(
        &self,
        id: JobId,
        state: &str,
        payload: serde_json::Value,
        who: &str,
    ) -> Result<JobRecord> {
        let record = self.inner.storage.get(id).await?.ok_or(RuntimeError::NotFound(id))?;
        let machine = self
            .inner
            .registry
            .get(&record.machine)
            .ok_or_else(|| RuntimeError::UnknownMachine(record.machine.clone()))?;
        if record.status == JobState::Running {
            return Err(RuntimeError::JobRunning(id));
        }
        check_depth(&record.machine, state, &payload)?;
        machine
            .check_move((&record.state, &record.payload), (state, &payload))
            .map_err(|e| match e {
                crate::registration::MoveError::Transition(e) => RuntimeError::Transition(e),
                crate::registration::MoveError::Codec(e) => RuntimeError::Encode(Box::new(e)),
            })?;
        let def = machine.definition();
        let terminal = def.state(state).is_some_and(|s| s.terminal);
        let now = self.inner.clock.now();
        let to = crate::storage::StateChange {
            state: state.to_owned(),
            payload,
            fingerprint: def.fingerprint().0,
        };
        let outcome = if terminal {
            crate::storage::Outcome::Completed { to }
        } else {
            // A pending job keeps its schedule; a failed or cancelled one runs again now.
            let run_at = if record.status == JobState::Pending {
                record.run_at
            } else {
                now
            };
            crate::storage::Outcome::Advanced { to, run_at }
        };
        let commit = crate::storage::Commit::unleased(&record, now, Some(who.to_owned()), outcome);
        self.inner.storage.commit(commit).await.map_err(|e| match e {
            crate::storage::StorageError::JobRunning { id } => RuntimeError::JobRunning(id),
            other => RuntimeError::Storage(other),
        })
    }

    /// Retries a failed or cancelled job from the state it stopped in: it
    /// is `Pending` again at once, with its attempts reset, and a history
    /// entry records the retry and this runtime's worker as who asked (the
    /// admin API records `admin`). Its machine need not be registered here.
    ///
    /// ```
    /// use runekernel::{job::Job, JobState, Runtime, RuntimeError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), RuntimeError> {
    /// let rt = Runtime::builder().deterministic(1).build().await?;
    /// let id = rt.submit_job(Job::new()).await?;
    /// rt.cancel(id).await?;
    /// assert_eq!(rt.retry(id).await?.status, JobState::Pending);
    /// rt.run_until_idle().await?;
    /// assert!(matches!(rt.retry(id).await, Err(RuntimeError::NotRetryable { .. })));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`RuntimeError::NotRetryable`] for a job that is pending, running or
    /// completed; [`RuntimeError::NotFound`]; a storage conflict when the
    /// job changed meanwhile.
    pub async fn retry(&self, id: JobId) -> Result<JobRecord> {
        self.retry_by(id, &self.inner.worker_id).await
    }

    /// [`retry`](Self::retry), recording `who` asked.
    pub(crate) async fn retry_by(&self, id: JobId, who: &str) -> Result<JobRecord> {
        let record = self.inner.storage.get(id).await?.ok_or(RuntimeError::NotFound(id))?;
        if !matches!(record.status, JobState::Failed | JobState::Cancelled) {
            return Err(RuntimeError::NotRetryable {
                id,
                status: record.status,
            });
        }
        let now = self.inner.clock.now();
        let outcome = crate::storage::Outcome::Reopened {
            run_at: now,
            reason: format!("retry requested by {who}"),
        };
        let commit = crate::storage::Commit::unleased(&record, now, Some(who.to_owned()), outcome);
        Ok(self.inner.storage.commit(commit).await?)
    }

    /// Submits the jobs of the periodic schedules (see
    /// [`RuntimeBuilder::periodic`]) whose ticks are due now and were not
    /// submitted yet: what a runtime with workers does by itself at each
    /// tick. In deterministic mode, [`run_until_idle`](Self::run_until_idle)
    /// calls it first.
    ///
    /// # Errors
    /// The first submission that failed (the others were made; the failed
    /// ones are tried again at the next call).
    pub async fn submit_periodic(&self) -> Result<()> {
        self.inner.periodic.submit_due(self, self.inner.clock.now()).await
    }

    /// Pauses queue `queue` for every process sharing the storage: no claim
    /// made after this returns takes its jobs (pending ones, or ones whose
    /// worker died) until [`resume_queue`](Self::resume_queue). A job
    /// already running goes on through its states until it finishes or has
    /// to wait (a retry, a snooze). Returns whether it was paused
    /// already. A queue needs no jobs to be paused.
    ///
    /// ```
    /// use runekernel::{job::Job, JobState, Runtime, RuntimeError, SubmitOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), RuntimeError> {
    /// let rt = Runtime::builder().deterministic(1).build().await?;
    /// rt.pause_queue("default").await?;
    /// let id = rt.submit_job(Job::new()).await?;
    /// assert_eq!(rt.run_until_idle().await?, 0, "nothing runs while the queue is paused");
    /// let queues = rt.queues().await?;
    /// assert!(queues[0].paused && queues[0].pending == 1);
    /// rt.resume_queue("default").await?;
    /// rt.run_until_idle().await?;
    /// assert_eq!(rt.get_record(id).await?.map(|job| job.status), Some(JobState::Completed));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`RuntimeError::EmptyQueue`]; storage errors.
    pub async fn pause_queue(&self, queue: &str) -> Result<bool> {
        let was = self.inner.storage.set_queue_paused(checked_queue(queue)?, true).await?;
        tracing::info!(queue, "queue paused");
        Ok(was)
    }

    /// Resumes a paused queue (see [`pause_queue`](Self::pause_queue)):
    /// its jobs are claimed again. Returns whether it was paused.
    ///
    /// # Errors
    /// [`RuntimeError::EmptyQueue`]; storage errors.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        let was = self
            .inner
            .storage
            .set_queue_paused(checked_queue(queue)?, false)
            .await?;
        tracing::info!(queue, "queue resumed");
        Ok(was)
    }

    /// Every queue that holds jobs, is paused, is served by this runtime or
    /// is a registered machine's, sorted by name: whether it is paused,
    /// and how many of its jobs are in each lifecycle state.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.queues_with(None).await
    }

    /// Queue `name`, as [`queues`](Self::queues) reports it, whether or
    /// not it holds any job.
    ///
    /// # Errors
    /// [`RuntimeError::EmptyQueue`]; storage errors.
    pub async fn queue(&self, name: &str) -> Result<QueueInfo> {
        let name = checked_queue(name)?;
        let queues = self.queues_with(Some(name)).await?;
        Ok(queues
            .into_iter()
            .find(|q| q.name == name)
            .unwrap_or_else(|| QueueInfo::new(name)))
    }

    /// [`queues`](Self::queues), with `also` among them.
    async fn queues_with(&self, also: Option<&str>) -> Result<Vec<QueueInfo>> {
        let counts = self.inner.storage.counts().await?;
        let paused = self.inner.storage.paused_queues().await?;
        let known = self.inner.registry.definitions().map(MachineDef::queue).chain(also);
        Ok(QueueInfo::gather(&counts, &paused, &self.inner.queues, known))
    }

    /// The periodic jobs this runtime submits (see
    /// [`RuntimeBuilder::periodic`]), with their schedules and their last
    /// and next ticks, in registration order.
    pub fn periodic_jobs(&self) -> Vec<PeriodicInfo> {
        self.inner.periodic.infos(self.inner.clock.now())
    }

    /// The policies this runtime was built with.
    pub fn policies(&self) -> &Policies {
        &self.inner.policies
    }

    /// Runs one pruning pass now (see [`Retention`]): if this runtime holds
    /// the storage's pruning duty, or can take it, deletes the finished
    /// jobs whose state's retention has passed, with their history, a
    /// batch at a time. Returns how many it deleted, or `None` when another
    /// runtime holds the duty. A runtime with workers runs a pass every
    /// `retention.interval` by itself; in deterministic mode, call this.
    ///
    /// ```
    /// use std::time::Duration;
    /// use runekernel::{job::Job, Runtime, RuntimeError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), RuntimeError> {
    /// let rt = Runtime::builder().deterministic(1).build().await?;
    /// let id = rt.submit_job(Job::new()).await?;
    /// rt.run_until_idle().await?;
    /// assert_eq!(rt.prune_finished().await?, Some(0), "completed less than 24 h ago");
    /// rt.advance(Duration::from_secs(25 * 3600)).await;
    /// assert_eq!(rt.prune_finished().await?, Some(1));
    /// assert!(rt.get_record(id).await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Storage errors.
    pub async fn prune_finished(&self) -> Result<Option<u64>> {
        Ok(retention::prune_pass(&self.inner).await?)
    }

    /// Deletes a finished job (completed, failed or cancelled) with its
    /// history; its idempotency key is free again.
    ///
    /// # Errors
    /// [`RuntimeError::NotFinished`] for a pending or running job (cancel
    /// it first); [`RuntimeError::NotFound`]; storage errors.
    pub async fn delete(&self, id: JobId) -> Result<()> {
        let outcome = self.inner.storage.delete(id).await.map_err(|e| match e {
            crate::storage::StorageError::NotFound(id) => RuntimeError::NotFound(id),
            other => RuntimeError::Storage(other),
        })?;
        match outcome {
            crate::storage::DeleteOutcome::Deleted => Ok(()),
            crate::storage::DeleteOutcome::NotFinished(status) => Err(RuntimeError::NotFinished { id, status }),
        }
    }

    /// Cancels a job: a pending job at once; a running one is signalled
    /// (`ctx.cancelled()`), and its step is dropped after the grace period;
    /// either way it ends `Cancelled`, never half-committed.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; storage errors.
    pub async fn cancel(&self, id: JobId) -> Result<CancelOutcome> {
        self.cancel_by(id, None).await
    }

    /// [`cancel`](Self::cancel), recording `who` asked in the history of a
    /// job cancelled at once.
    pub(crate) async fn cancel_by(&self, id: JobId, who: Option<&str>) -> Result<CancelOutcome> {
        let reason = who.map(|who| format!("cancelled by {who}"));
        let outcome = self
            .inner
            .storage
            .cancel(id, self.inner.clock.now(), reason)
            .await
            .map_err(|e| match e {
                crate::storage::StorageError::NotFound(id) => RuntimeError::NotFound(id),
                other => RuntimeError::Storage(other),
            })?;
        if outcome == CancelOutcome::Requested {
            self.inner.active.cancel(id);
        }
        Ok(outcome)
    }

    /// Runs a pending job now, whatever its `run_at` and even if its queue
    /// is paused, until it finishes or has to wait (a retry, a snooze).
    /// Returns its lifecycle state afterwards. A job that another worker
    /// holds, or that has finished, is left alone and its current state
    /// returned.
    ///
    /// The steps run on a task of the runtime's own, so the call is
    /// cancel-safe: a caller that stops waiting (a timeout, an HTTP client
    /// that disconnects) leaves the job running to its next commit, never
    /// half-run under a lease kept alive for nothing.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; [`RuntimeError::UnknownMachine`] when its
    /// machine is not registered here; [`RuntimeError::Shutdown`] when the
    /// runtime stops before the step ends.
    pub async fn run_job(&self, id: &JobId) -> Result<JobState> {
        let record = self.inner.storage.get(*id).await?.ok_or(RuntimeError::NotFound(*id))?;
        self.inner.machine_def(&record.machine)?;
        let claimed = self
            .inner
            .storage
            .claim_job(
                *id,
                &self.inner.worker_id,
                self.inner.clock.now(),
                self.inner.lease_ms(),
            )
            .await?;
        let Some(job) = claimed else {
            return Ok(record.status);
        };
        let rt = Arc::clone(&self.inner);
        let run = self
            .inner
            .tasks
            .spawn(async move { executor::run_claimed(&rt, job, &mut None).await.status });
        run.await.map_err(|_| RuntimeError::Shutdown)
    }

    // ----- deterministic mode -----

    /// Runs every step that is ready now, one job at a time in (priority,
    /// run_at, id) order within each queue this runtime serves (queues by
    /// name), in the calling task, and returns how many jobs it ran. Meant for deterministic mode, where no background worker runs.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn run_until_idle(&self) -> Result<usize> {
        self.submit_periodic().await?;
        let mut ran = 0;
        'next: loop {
            for queue in self.inner.queues.iter() {
                let request = self.inner.claim_request(&queue.name, 1);
                if let Some(job) = self.inner.storage.claim(request).await?.pop() {
                    executor::run_claimed(&self.inner, job, &mut None).await;
                    ran += 1;
                    continue 'next;
                }
            }
            return Ok(ran);
        }
    }

    /// Moves the manual clock forward (deterministic mode), waking whatever
    /// sleeps on it: delayed jobs, backoffs, snoozes, timeouts and leases
    /// come due. Has no effect on a runtime that uses the system clock.
    pub async fn advance(&self, by: Duration) {
        self.inner.clock.advance(by);
        tokio::task::yield_now().await;
    }

    /// The runtime's time in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> Millis {
        self.inner.clock.now()
    }

    // ----- stopping -----

    /// Waits for `signal`, then shuts down gracefully as
    /// [`shutdown`](Self::shutdown) does: any future works, such as
    /// [`termination`] (Ctrl-C or SIGTERM) or a cancellation token's
    /// `cancelled()`.
    ///
    /// ```no_run
    /// # async fn run(rt: runekernel::Runtime) -> Result<(), runekernel::RuntimeError> {
    /// rt.shutdown_on(runekernel::termination()).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    pub async fn shutdown_on(&self, signal: impl std::future::Future<Output = ()>) -> Result<()> {
        signal.await;
        self.shutdown().await
    }

    /// Resolves once [`shutdown`](Self::shutdown) has begun, so that
    /// long-lived work of the app's own ends with the runtime (the admin
    /// API's event stream does).
    pub async fn stopping(&self) {
        self.inner.stopping.raised().await;
    }

    /// Stops gracefully: no new claims; running steps may finish (and commit)
    /// until the shutdown timeout, then they are dropped and their jobs handed
    /// back to the queue. No job is lost and none is half-committed.
    ///
    /// # Errors
    /// None today; reserved for storage errors while handing jobs back.
    pub async fn shutdown(&self) -> Result<()> {
        let inner = &self.inner;
        inner.stopping.raise();
        inner.tasks.close();
        if tokio::time::timeout(inner.shutdown_timeout, inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown timeout reached; handing the remaining jobs back");
            for (id, active) in inner.active.snapshot() {
                active.lost.raise();
                if let Err(error) = inner.storage.release(id, active.lease, inner.clock.now()).await {
                    tracing::warn!(job = %id, %error, "could not hand a job back; its lease will expire");
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), inner.tasks.wait()).await;
        }
        inner.closed.raise();
        tracing::info!("runtime shut down");
        Ok(())
    }
}

/// `queue`, unless it is empty (or only blanks).
pub(crate) fn checked_queue(queue: &str) -> Result<&str> {
    if queue.trim().is_empty() {
        return Err(RuntimeError::EmptyQueue);
    }
    Ok(queue)
}

/// Refuses a payload of `machine`'s `state` that would not read back once
/// stored ([`crate::storage::MAX_PAYLOAD_DEPTH`]).
pub(crate) fn check_depth(machine: &str, state: &str, payload: &serde_json::Value) -> Result<()> {
    crate::storage::check_payload_depth(payload).map_err(|source| RuntimeError::PayloadTooDeep {
        machine: machine.to_owned(),
        state: state.to_owned(),
        source,
    })
}

/// A stored job decoded as `M`.
fn view<M: StateMachine>(record: &JobRecord) -> Result<JobView<M>> {
    if record.machine != M::NAME {
        return Err(RuntimeError::WrongMachine {
            id: record.id,
            expected: M::NAME.to_owned(),
            actual: record.machine.clone(),
        });
    }
    let state = M::decode(&record.state, record.payload.clone()).map_err(|source| RuntimeError::Decode {
        id: record.id,
        machine: record.machine.clone(),
        state: record.state.clone(),
        stored: crate::machine::Fingerprint(record.fingerprint),
        current: M::definition().fingerprint(),
        source: Box::new(source),
    })?;
    Ok(JobView::new(record, state))
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("worker", &self.inner.worker_id)
            .field("machines", &self.inner.registry.names())
            .field("deterministic", &self.inner.deterministic)
            .finish()
    }
}

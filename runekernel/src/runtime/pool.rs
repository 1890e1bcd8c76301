//! The executor tasks that run claimed jobs. Each task runs one job at a
//! time and then waits for the next, so a claimed job costs a hand-over
//! rather than a task spawn: a spawn allocates the job's whole future, larger
//! than the allocator's per-thread caches keep, and frees it again. A new
//! task is spawned only when every task is busy, so the pool grows to the
//! most jobs this runtime ever ran at once and no further.
//!
//! When claims are cheap (the in-memory store), a task that finishes a job
//! claims its next one itself, keeping its worker slot: no hand-over, and
//! the job's payload is allocated and freed on one thread. A payload freed
//! on another thread than the one that allocated it goes back through that
//! thread's locked allocator arena.
//!
//! Idle tasks wait last-in, first-out, so the most recently busy (and
//! cache-warm) task gets the next job. Tasks end once the pool is dropped
//! (the producer and its claims are done) and their job is finished.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::task::TaskTracker;

use crate::storage::JobRecord;

use super::claim::claim_jobs;
use super::executor::run_claimed;
use super::slots::{SlotPermits, Slots, WorkerSlot};
use super::Inner;

/// A claimed job and the worker slot it runs in.
type Claimed = (JobRecord, WorkerSlot);

/// Hands claimed jobs of one queue to executor tasks.
pub(crate) struct ExecutorPool {
    rt: Arc<Inner>,
    tracker: TaskTracker,
    shared: Arc<Shared>,
}

/// What the pool and its tasks share.
struct Shared {
    /// The queue whose jobs the tasks run, and claim.
    queue: Arc<str>,
    idle: Mutex<Idle>,
    /// Jobs claimed ahead ([`crate::Policies::prefetch`]) that wait for a
    /// worker slot: while there are any, a task that finishes its job leaves
    /// its slot to them rather than claim its next job itself.
    queued: AtomicUsize,
}

/// The idle tasks, each waiting on its own channel.
#[derive(Default)]
struct Idle {
    waiting: Vec<oneshot::Sender<Claimed>>,
    /// The pool is gone: a task that finishes its job ends.
    closed: bool,
}

impl ExecutorPool {
    /// A pool of tasks for the jobs of `queue`, spawned on `tracker` as
    /// needed.
    pub(crate) fn new(rt: Arc<Inner>, queue: Arc<str>, tracker: TaskTracker) -> Self {
        ExecutorPool {
            rt,
            tracker,
            shared: Arc::new(Shared {
                queue,
                idle: Mutex::default(),
                queued: AtomicUsize::new(0),
            }),
        }
    }

    /// Puts jobs claimed ahead in line for worker slots, one per permit
    /// of `ahead` ([`crate::Policies::prefetch`]).
    pub(crate) fn line(&self, ahead: OwnedSemaphorePermit) -> WaitingForSlots<'_> {
        self.shared.queued.fetch_add(ahead.num_permits(), Ordering::SeqCst);
        WaitingForSlots { pool: self, ahead }
    }

    /// Jobs waiting in line for worker slots.
    pub(crate) fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Runs a claimed job on an idle task, or on a new one if all are busy.
    pub(crate) fn run(&self, job: JobRecord, slot: WorkerSlot) {
        let mut claimed = (job, slot);
        loop {
            let Some(task) = lock(&self.shared.idle).waiting.pop() else {
                break;
            };
            match task.send(claimed) {
                Ok(()) => return,
                // That task is gone (its runtime is being dropped); try the next.
                Err(back) => claimed = back,
            }
        }
        let rt = Arc::clone(&self.rt);
        let shared = Arc::clone(&self.shared);
        self.tracker.spawn(execute(rt, claimed, shared));
    }
}

impl Drop for ExecutorPool {
    fn drop(&mut self) {
        let mut idle = lock(&self.shared.idle);
        idle.closed = true;
        // Dropping their channels ends the waiting tasks.
        idle.waiting.clear();
    }
}

/// One executor task: runs `claimed`, then every job it claims itself or
/// is handed, until the pool is gone.
async fn execute(rt: Arc<Inner>, claimed: Claimed, shared: Arc<Shared>) {
    let (mut job, slot) = claimed;
    let mut slot = Some(slot);
    loop {
        run_claimed(&rt, job, &mut slot).await;
        if let Some(next) = claim_next(&rt, slot.as_ref(), &shared).await {
            job = next;
            continue;
        }
        // Idle: the slot goes back to the producer.
        drop(slot.take());
        let (next, receiver) = oneshot::channel();
        {
            let mut idle = lock(&shared.idle);
            if idle.closed {
                return;
            }
            idle.waiting.push(next);
        }
        match receiver.await {
            Ok((next, next_slot)) => {
                job = next;
                slot = Some(next_slot);
            }
            Err(_) => return,
        }
    }
}

/// The next job of an executor that still holds its slot, when claims are
/// cheap ([`Capabilities::cheap_claims`](crate::storage::Capabilities::cheap_claims)):
/// claimed on this task's thread, which reads its payload and frees it,
/// and run without a hand-over. `None` sends the executor idle.
async fn claim_next(rt: &Inner, slot: Option<&WorkerSlot>, shared: &Shared) -> Option<JobRecord> {
    if !rt.storage.capabilities().cheap_claims
        || !slot.is_some_and(WorkerSlot::is_held)
        || rt.stopping.is_raised()
        || rt.lease_health.at_risk()
        || shared.queued.load(Ordering::Relaxed) > 0
    {
        return None;
    }
    claim_jobs(rt, &shared.queue, 1).await.pop()
}

/// Jobs of one claim waiting for worker slots, each holding a prefetch
/// permit; counted in the pool's line, and the permit given back, as each
/// gets its slot, or when the line is dropped.
pub(crate) struct WaitingForSlots<'a> {
    pool: &'a ExecutorPool,
    ahead: OwnedSemaphorePermit,
}

impl WaitingForSlots<'_> {
    /// Waits for a slot for the next job in line; `None` once the runtime
    /// stops (or when the line is empty).
    pub(crate) async fn next_slot(&mut self, slots: &Slots) -> Option<SlotPermits> {
        if self.ahead.num_permits() == 0 {
            return None;
        }
        let permit = tokio::select! {
            () = self.pool.rt.stopping.raised() => None,
            permit = slots.take(1) => permit,
        }?;
        drop(self.ahead.split(1));
        self.pool.shared.queued.fetch_sub(1, Ordering::SeqCst);
        Some(permit)
    }
}

impl Drop for WaitingForSlots<'_> {
    fn drop(&mut self) {
        self.pool
            .shared
            .queued
            .fetch_sub(self.ahead.num_permits(), Ordering::SeqCst);
    }
}

/// Locks the idle list; its updates cannot be left half done by a panic.
fn lock(idle: &Mutex<Idle>) -> std::sync::MutexGuard<'_, Idle> {
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::job::Job;
    use crate::runtime::test_storage::start_to_done;
    use crate::runtime::Runtime;
    use crate::storage::{ClaimRequest, InMemoryStorage, JobState, Storage, DEFAULT_QUEUE};
    use crate::DynamicNext;

    /// A runtime over `storage` without workers of its own, for a pool (or
    /// an executor) the test drives, with machine `m`. Each step takes a
    /// permit of `gate` first.
    pub(crate) async fn runtime_over(storage: Arc<dyn Storage>, gate: &Arc<Semaphore>) -> Runtime {
        let gate = Arc::clone(gate);
        let machine = start_to_done().with_handler(move |_ctx, _step| {
            let gate = Arc::clone(&gate);
            async move {
                gate.acquire().await.unwrap().forget();
                Ok(DynamicNext::to("done"))
            }
        });
        Runtime::builder()
            .shared_storage(storage)
            .workers(0)
            .register(machine)
            .build()
            .await
            .unwrap()
    }

    /// A slot of the runtime's `slots`, which has one free.
    fn worker_slot(slots: &Arc<Semaphore>) -> WorkerSlot {
        let slots = Slots::new(Arc::clone(slots), None);
        let permit = slots.try_take(1).expect("a free slot");
        WorkerSlot::new(slots, permit)
    }

    async fn runtime(gate: &Arc<Semaphore>) -> Runtime {
        runtime_over(Arc::new(InMemoryStorage::new()), gate).await
    }

    /// Submits and claims one job of machine `m`.
    pub(crate) async fn claimed(rt: &Runtime) -> JobRecord {
        rt.submit_job(Job::for_machine("m")).await.unwrap();
        let request = ClaimRequest {
            worker: rt.inner.worker_id.clone(),
            machines: vec!["m".into()],
            queue: DEFAULT_QUEUE.to_owned(),
            limit: 1,
            now: rt.inner.clock.now(),
            lease_ms: 60_000,
        };
        rt.inner.storage.claim(request).await.unwrap().pop().unwrap()
    }

    async fn until_completed(rt: &Runtime, job: &JobRecord) {
        while rt.get_record(job.id).await.unwrap().unwrap().status != JobState::Completed {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until a task of `pool` is idle, waiting to be handed a job.
    async fn until_idle(pool: &ExecutorPool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while lock(&pool.shared.idle).waiting.is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("a task goes idle");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_job_after_another_runs_on_one_task_which_ends_with_the_pool() {
        let rt = runtime(&Arc::new(Semaphore::new(Semaphore::MAX_PERMITS))).await;
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(1));
        let pool = ExecutorPool::new(Arc::clone(&rt.inner), Arc::from(DEFAULT_QUEUE), tracker.clone());
        for _ in 0..20 {
            let job = claimed(&rt).await;
            pool.run(job.clone(), worker_slot(&slots));
            until_completed(&rt, &job).await;
            // The task is idle again before the next job, which can reuse it.
            until_idle(&pool).await;
            assert_eq!(tracker.len(), 1, "one task runs every job");
        }
        drop(pool);
        tracker.close();
        tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .expect("the idle task ends once the pool is gone");
    }

    /// Hands one job to a pool over `storage` with another job waiting in
    /// storage and `in_line` claimed ahead; returns the waiting job's state
    /// once the first has finished and its task has gone idle.
    async fn waiting_job_after_one_handed_over(storage: Arc<dyn Storage>, in_line: usize) -> JobState {
        let rt = runtime_over(storage, &Arc::new(Semaphore::new(Semaphore::MAX_PERMITS))).await;
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(1));
        let pool = ExecutorPool::new(Arc::clone(&rt.inner), Arc::from(DEFAULT_QUEUE), tracker.clone());
        let ahead = Arc::new(Semaphore::new(in_line));
        let _line = pool.line(ahead.acquire_many_owned(in_line as u32).await.unwrap());
        let first = claimed(&rt).await;
        let waiting = rt.submit_job(Job::for_machine("m")).await.unwrap();
        pool.run(first.clone(), worker_slot(&slots));
        until_completed(&rt, &first).await;
        until_idle(&pool).await;
        assert_eq!(slots.available_permits(), 1, "an idle task gives its slot back");
        rt.get_record(waiting).await.unwrap().unwrap().status
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_cheap_claims_a_task_claims_and_runs_the_next_job_itself() {
        let state = waiting_job_after_one_handed_over(Arc::new(InMemoryStorage::new()), 0).await;
        assert_eq!(state, JobState::Completed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_jobs_claimed_ahead_in_line_a_task_leaves_its_slot_to_them() {
        let state = waiting_job_after_one_handed_over(Arc::new(InMemoryStorage::new()), 1).await;
        assert_eq!(state, JobState::Pending);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_cheap_claims_a_task_waits_to_be_handed_its_next_job() {
        let storage = crate::storage::SqliteStorage::open_in_memory().unwrap();
        let state = waiting_job_after_one_handed_over(Arc::new(storage), 0).await;
        assert_eq!(state, JobState::Pending);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_that_claims_job_after_job_lets_other_tasks_run() {
        const JOBS: u64 = 2_000;
        let machine = start_to_done();
        let storage = Arc::new(InMemoryStorage::new());
        let rt = Runtime::builder()
            .shared_storage(storage.clone())
            .workers(1)
            .register(machine)
            .build()
            .await
            .unwrap();
        for _ in 0..JOBS {
            rt.submit_job(Job::for_machine("m")).await.unwrap();
        }
        // This task gets to run again while the one executor works through
        // the jobs, not only once it has run them all.
        let completed = loop {
            tokio::task::yield_now().await;
            let counts = storage.counts().await.unwrap();
            let completed: u64 = counts
                .iter()
                .filter(|c| c.status == JobState::Completed)
                .map(|c| c.count)
                .sum();
            if completed > 0 {
                break completed;
            }
        };
        assert!(
            completed < JOBS,
            "{completed} of {JOBS} jobs ran before the test task could run"
        );
        rt.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_given_while_every_task_is_busy_gets_a_new_task() {
        let gate = Arc::new(Semaphore::new(0));
        let rt = runtime(&gate).await;
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(3));
        let pool = ExecutorPool::new(Arc::clone(&rt.inner), Arc::from(DEFAULT_QUEUE), tracker.clone());
        let mut jobs = Vec::new();
        for _ in 0..3 {
            let job = claimed(&rt).await;
            pool.run(job.clone(), worker_slot(&slots));
            jobs.push(job);
        }
        assert_eq!(tracker.len(), 3, "no task was idle for the second and third job");
        gate.add_permits(3);
        for job in &jobs {
            until_completed(&rt, job).await;
        }
        drop(pool);
        tracker.close();
        tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .expect("every task ends once the pool is gone");
    }
}

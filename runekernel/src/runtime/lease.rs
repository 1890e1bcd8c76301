//! The jobs this runtime holds, and the heartbeat that keeps their leases.
//!
//! Every job this runtime holds a lease on, running or waiting in line for a
//! worker, has an [`ActiveJob`]: a cancellation signal its step's
//! `JobContext` sees, and a "lost" signal raised when the lease can no
//! longer be extended (another worker may have the job now: the step is
//! abandoned, or never started, and nothing is committed).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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

/// How well this runtime keeps its leases: written by the heartbeat loop,
/// read before every claim and step.
#[derive(Default)]
pub(crate) struct LeaseHealth {
    /// Set when no heartbeat has succeeded for so long that the leases may
    /// run out within a heartbeat: no new step starts until one succeeds.
    at_risk: AtomicBool,
    /// Notified when `at_risk` is lowered.
    recovered: Notify,
    /// Heartbeat calls that failed, and beats of single jobs that failed
    /// for another reason than a lost lease.
    failures: AtomicU64,
}

impl LeaseHealth {
    /// Whether the leases may run out before they are extended again.
    pub(crate) fn at_risk(&self) -> bool {
        self.at_risk.load(Ordering::Relaxed)
    }

    /// How many heartbeats failed since the runtime started.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Completes once the leases are not at risk (at once if they are not).
    pub(crate) async fn safe(&self) {
        loop {
            let recovered = self.recovered.notified();
            tokio::pin!(recovered);
            // Registered before the check, so a recovery in between still
            // wakes this task.
            recovered.as_mut().enable();
            if !self.at_risk() {
                return;
            }
            recovered.await;
        }
    }

    /// Records whether the leases are at risk; returns whether that
    /// changed.
    fn set_at_risk(&self, at_risk: bool) -> bool {
        let changed = at_risk != self.at_risk.swap(at_risk, Ordering::Relaxed);
        if changed && !at_risk {
            self.recovered.notify_waiters();
        }
        changed
    }
}

/// Extends every held lease, running and waiting in line, in one storage
/// call; raises `cancel` for jobs whose cancellation was requested and
/// `lost` for leases that are gone. Returns whether every lease was
/// extended.
async fn beat(rt: &Inner) -> bool {
    let held = rt.active.snapshot();
    if held.is_empty() {
        return true;
    }
    let leases = held.iter().map(|(id, active)| (*id, active.lease)).collect();
    let results = match rt.storage.heartbeat_batch(leases, rt.clock.now(), rt.lease_ms()).await {
        Ok(results) => results,
        Err(error) => {
            rt.lease_health.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, jobs = held.len(), "heartbeat failed; retrying");
            return false;
        }
    };
    let mut all = results.len() == held.len();
    for ((id, active), result) in held.iter().zip(results) {
        match result {
            Ok(beat) if beat.cancel_requested => active.cancel.raise(),
            Ok(_) => {}
            Err(StorageError::LeaseLost { .. } | StorageError::NotFound(_)) => {
                tracing::warn!(job = %id, "lease lost; abandoning the step");
                active.lost.raise();
            }
            Err(error) => {
                all = false;
                rt.lease_health.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(job = %id, %error, "heartbeat failed; retrying");
            }
        }
    }
    all
}

/// Beats every `policies.heartbeat` until the runtime is closed; after a
/// failed beat, again four times as often until one succeeds. When none
/// has succeeded for the lease less a heartbeat, the leases may run out
/// before the next one: [`LeaseHealth::at_risk`] is raised and no new
/// step starts (running steps go on; their commits are refused if their
/// lease did run out) until a beat succeeds.
///
/// Leases are times on the workers' clocks: a lease written by one
/// worker expires by the clock of whichever worker claims next. A worker
/// whose clock is ahead by more than the lease less a heartbeat may take
/// over a job whose lease still holds by its holder's clock (the holder's
/// late commit is then refused, so nothing is committed twice, but the
/// step runs twice); keep clocks in sync well within that margin.
pub(crate) async fn heartbeat_loop(rt: Arc<Inner>) {
    let policies = &rt.policies;
    let margin = policies.lease.saturating_sub(policies.heartbeat);
    let retry = (policies.heartbeat / 4).max(Duration::from_millis(1));
    let mut last_ok = Instant::now();
    let mut next = policies.heartbeat;
    loop {
        tokio::select! {
            () = rt.closed.raised() => return,
            () = tokio::time::sleep(next) => {}
        }
        let ok = beat(&rt).await;
        if ok {
            last_ok = Instant::now();
        }
        let at_risk = last_ok.elapsed() >= margin;
        if rt.lease_health.set_at_risk(at_risk) {
            if at_risk {
                tracing::error!(
                    since = ?last_ok.elapsed(),
                    "leases cannot be extended; starting no new step until a heartbeat succeeds"
                );
            } else {
                tracing::info!("heartbeats succeed again; starting steps");
            }
        }
        next = if ok { policies.heartbeat } else { retry };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use crate::job::Job;
    use crate::runtime::test_storage::{runtime, start_to_done, status, Faulty};
    use crate::storage::JobState;
    use crate::DynamicNext;

    #[tokio::test]
    async fn waiting_for_safe_leases_ends_when_they_are_safe_again() {
        let health = super::LeaseHealth::default();
        health.safe().await;
        assert!(health.set_at_risk(true));
        let waiting = health.safe();
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending(), "at risk: it waits");
        assert!(!health.set_at_risk(true), "no change");
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        assert!(health.set_at_risk(false));
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("safe again: the wait ends");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_runtime_that_cannot_extend_its_leases_starts_no_new_step_until_it_can() {
        let storage = Arc::new(Faulty::default());
        let gate = Arc::new(Semaphore::new(0));
        let step_gate = Arc::clone(&gate);
        let machine = start_to_done().with_handler(move |_ctx, step| {
            let gate = Arc::clone(&step_gate);
            async move {
                if step.data.get("hold").is_some() {
                    gate.acquire()
                        .await
                        .map_err(|e| crate::StepError::fatal(e.to_string()))?
                        .forget();
                }
                Ok(DynamicNext::to("done"))
            }
        });
        let rt = runtime(storage.clone(), machine, 400).await;
        let mut hold = Job::for_machine("m");
        hold.set_data("hold", true);
        let held = rt.submit_job(hold).await.unwrap();
        while status(&rt, held).await != JobState::Running {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Every heartbeat from now on fails; well within the lease less a
        // heartbeat the leases are at risk.
        storage.failing_heartbeats.store(true, Ordering::SeqCst);
        let calls = storage.heartbeats.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(
            storage.heartbeats.load(Ordering::SeqCst) >= calls + 4,
            "a failed heartbeat is retried sooner than the next one was due"
        );
        assert!(rt.heartbeat_failures() >= 4, "{}", rt.heartbeat_failures());
        let waiting = rt.submit_job(Job::for_machine("m")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(status(&rt, waiting).await, JobState::Pending, "no new step started");
        // Heartbeats succeed again: work goes on.
        storage.failing_heartbeats.store(false, Ordering::SeqCst);
        let done = tokio::time::timeout(Duration::from_secs(10), rt.wait_record(waiting))
            .await
            .expect("the job runs once heartbeats succeed")
            .unwrap();
        assert_eq!(done.status, JobState::Completed);
        gate.add_permits(1);
        rt.shutdown().await.unwrap();
    }
}

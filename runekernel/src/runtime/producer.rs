//! The background loop that claims ready jobs and hands each to an executor
//! task (`pool.rs`), never more steps running at once than the runtime's
//! worker count (River's producer). It sleeps until storage announces new
//! work, a job this runtime put back comes due, a worker frees up, or the
//! poll interval passes (for other processes' delayed jobs and expiring
//! leases).
//!
//! A claim reserves its worker slots before it asks storage, so up to
//! [`CLAIMS_IN_FLIGHT`] claims can wait on storage at once without ever
//! claiming more jobs than there are free slots: while one claim's round
//! trip is in flight, the next one is already on its way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::storage::{JobRecord, StorageEvent};

use super::executor::WorkerSlot;
use super::pool::ExecutorPool;
use super::Inner;

/// How long a claim waits for more worker slots to free up while jobs run.
const GATHER: Duration = Duration::from_millis(1);

/// Claims waiting on storage at once.
const CLAIMS_IN_FLIGHT: usize = 2;

/// Claims and dispatches until shutdown. `events` is subscribed before the
/// loop is spawned, so no announcement made after `build` can be missed.
pub(crate) async fn produce(
    rt: Arc<Inner>,
    workers: usize,
    tracker: TaskTracker,
    mut events: broadcast::Receiver<StorageEvent>,
) {
    let slots = Arc::new(Semaphore::new(workers));
    // The claim size worth waiting for while jobs are running.
    let batch = (workers.min(rt.policies.claim_batch) / 2).max(1);
    // Each claim reports whether it found work, and in which round: a claim
    // sent before the producer last woke up cannot say there is no work now.
    let (found_tx, mut found) = mpsc::unbounded_channel::<(u64, bool)>();
    let mut in_flight = 0usize;
    let mut round = 0u64;
    let pool = Arc::new(ExecutorPool::new(Arc::clone(&rt), tracker.clone()));
    loop {
        if rt.stopping.is_raised() {
            return;
        }
        let mut idle = false;
        while let Ok((claim_round, found_work)) = found.try_recv() {
            in_flight -= 1;
            idle |= !found_work && claim_round == round;
        }
        if in_flight == CLAIMS_IN_FLIGHT {
            tokio::select! {
                () = rt.stopping.raised() => return,
                Some((claim_round, found_work)) = found.recv() => {
                    in_flight -= 1;
                    idle |= !found_work && claim_round == round;
                }
            }
        }
        if idle {
            wait_for_work(&rt, &mut events).await;
            round += 1;
            continue;
        }
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                () = rt.stopping.raised() => return,
                permit = Arc::clone(&slots).acquire_owned() => drop(permit),
            }
            continue;
        }
        if free < batch && free < workers {
            // Jobs are running: let slots gather for a moment, so claims
            // (and the commits that follow them) come in batches rather
            // than one job per round trip.
            tokio::select! {
                () = rt.stopping.raised() => return,
                () = tokio::time::sleep(GATHER) => {}
                permits = Arc::clone(&slots).acquire_many_owned(batch as u32) => drop(permits),
            }
        }
        // Executors going on to their next step may have taken the slots.
        let free = slots.available_permits().min(rt.policies.claim_batch);
        if free == 0 {
            continue;
        }
        let Ok(reserved) = Arc::clone(&slots).try_acquire_many_owned(free as u32) else {
            continue;
        };
        in_flight += 1;
        let claim = Claim {
            rt: Arc::clone(&rt),
            slots: Arc::clone(&slots),
            reserved,
            pool: Arc::clone(&pool),
        };
        let found_tx = found_tx.clone();
        let claim_round = round;
        tracker.spawn(async move {
            let found_work = claim.run().await;
            let _ = found_tx.send((claim_round, found_work));
        });
    }
}

/// One claim of up to `reserved` jobs, handed to the executors as claimed.
struct Claim {
    rt: Arc<Inner>,
    slots: Arc<Semaphore>,
    reserved: OwnedSemaphorePermit,
    pool: Arc<ExecutorPool>,
}

impl Claim {
    /// Claims and starts the jobs; returns whether it found any. Slots it
    /// reserved and did not use go back when it ends.
    async fn run(mut self) -> bool {
        let jobs = claim_jobs(&self.rt, self.reserved.num_permits()).await;
        let found_work = !jobs.is_empty();
        for job in jobs {
            // A storage that returns more jobs than asked for gets them run
            // as slots free up.
            let permit = match self.reserved.split(1) {
                Some(permit) => permit,
                None => match Arc::clone(&self.slots).acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return found_work,
                },
            };
            self.pool.run(job, WorkerSlot::new(Arc::clone(&self.slots), permit));
        }
        found_work
    }
}

/// Claims up to `limit` jobs to run now. A failed claim is logged and finds
/// none; jobs claimed while the runtime stops are handed straight back.
pub(crate) async fn claim_jobs(rt: &Inner, limit: usize) -> Vec<JobRecord> {
    let jobs = match rt.storage.claim(rt.claim_request(limit)).await {
        Ok(jobs) => jobs,
        Err(error) => {
            tracing::error!(%error, "claiming jobs failed; retrying");
            return Vec::new();
        }
    };
    if !rt.stopping.is_raised() {
        return jobs;
    }
    for job in jobs {
        if let Some(lease) = &job.lease {
            if let Err(error) = rt.storage.release(job.id, lease.token, rt.clock.now()).await {
                tracing::warn!(job = %job.id, %error, "could not hand back a job claimed during shutdown");
            }
        }
    }
    Vec::new()
}

/// Waits for a sign that a claim may find work.
async fn wait_for_work(rt: &Inner, events: &mut broadcast::Receiver<StorageEvent>) {
    let poll = tokio::time::sleep(rt.policies.poll_interval);
    tokio::pin!(poll);
    loop {
        tokio::select! {
            () = rt.stopping.raised() => return,
            () = &mut poll => return,
            () = rt.wake.notified() => return,
            event = events.recv() => match event {
                Ok(StorageEvent::JobChanged(_)) => continue,
                // New work, missed events, or a closed channel: look again.
                Ok(StorageEvent::JobsReady) | Err(_) => return,
            },
        }
    }
}

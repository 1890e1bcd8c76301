//! The background loop that claims the ready jobs of one queue and hands
//! each to an executor task (`pool.rs`), never more steps running at once
//! than the runtime's worker count, nor than the queue's own limit (River's
//! producer: one per queue). It sleeps until storage announces new
//! work, a job this runtime put back comes due, a worker frees up, or the
//! poll interval passes (for other processes' delayed jobs and expiring
//! leases).
//!
//! A claim reserves its worker slots before it asks storage, so up to
//! [`CLAIMS_IN_FLIGHT`] claims can wait on storage at once without ever
//! claiming more jobs than there are free slots: while one claim's round
//! trip is in flight, the next one is already on its way. With
//! [`Policies::prefetch`](crate::Policies::prefetch), a claim may also ask
//! for that many jobs more, which wait in claim order for slots to free up
//! (graphile-worker's local queue).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::storage::StorageEvent;

use super::claim::{claim_jobs, hand_back};
use super::pool::ExecutorPool;
use super::slots::{SlotPermits, Slots, WorkerSlot};
use super::Inner;

/// How long a claim waits for more worker slots to free up while jobs run.
const GATHER: Duration = Duration::from_millis(1);

/// Claims waiting on storage at once.
const CLAIMS_IN_FLIGHT: usize = 2;

/// What one producer serves.
pub(crate) struct Lane {
    /// The queue it claims from.
    pub(crate) queue: String,
    /// The slots its steps take.
    pub(crate) slots: Slots,
    /// The most of its steps that may run at once.
    pub(crate) workers: usize,
    /// Notified when a job of the queue that this runtime put back for
    /// later comes due.
    pub(crate) wake: Arc<Notify>,
}

/// Claims and dispatches the jobs of `lane` until shutdown. `events` is
/// subscribed before the loop is spawned, so no announcement made after
/// `build` can be missed.
pub(crate) async fn produce(
    rt: Arc<Inner>,
    lane: Lane,
    tracker: TaskTracker,
    mut events: broadcast::Receiver<StorageEvent>,
) {
    let Lane {
        queue,
        slots,
        workers,
        wake,
    } = lane;
    let queue: Arc<str> = Arc::from(queue);
    // One permit per job that may wait for a slot.
    let prefetch = rt.policies.prefetch;
    let ahead = Arc::new(Semaphore::new(prefetch));
    let capacity = workers + prefetch;
    // The claim size worth waiting for while jobs are running.
    let batch = (capacity.min(rt.policies.claim_batch) / 2).max(1);
    // Each claim reports whether it found work, and in which round: a claim
    // sent before the producer last woke up cannot say there is no work now.
    let (found_tx, mut found) = mpsc::unbounded_channel::<(u64, bool)>();
    let mut in_flight = 0usize;
    let mut round = 0u64;
    let pool = Arc::new(ExecutorPool::new(Arc::clone(&rt), Arc::clone(&queue), tracker.clone()));
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
            wait_for_work(&rt, &wake, &mut events).await;
            round += 1;
            continue;
        }
        if rt.lease_health.at_risk() {
            // No claim while the leases it would take may not be kept.
            tokio::select! {
                () = rt.stopping.raised() => return,
                () = tokio::time::sleep(rt.policies.heartbeat / 4) => {}
            }
            continue;
        }
        // Free slots go to jobs already waiting in line before new claims.
        let free_slots = || {
            if pool.queued() > 0 {
                0
            } else {
                slots.available()
            }
        };
        let room = free_slots() + ahead.available_permits();
        if room == 0 {
            // Waiting jobs hold `ahead` permits, so with jobs in line a
            // permit comes back as each one starts.
            let in_line = pool.queued() > 0;
            tokio::select! {
                () = rt.stopping.raised() => return,
                permit = slots.take(1), if !in_line => drop(permit),
                permit = Arc::clone(&ahead).acquire_owned(), if prefetch > 0 => drop(permit),
            }
            continue;
        }
        if room < batch && room < capacity {
            // Jobs are running: let room gather for a moment, so claims
            // (and the commits that follow them) come in batches rather
            // than one job per round trip. While claimed jobs wait for
            // slots, they are first in the slots' queue: wait for them to
            // start rather than queue up in front of them.
            let waiting = prefetch - ahead.available_permits();
            tokio::select! {
                () = rt.stopping.raised() => return,
                () = tokio::time::sleep(GATHER) => {}
                permits = slots.take(batch), if waiting == 0 => drop(permits),
                permits = Arc::clone(&ahead).acquire_many_owned(waiting.min(batch) as u32), if waiting > 0 => {
                    drop(permits);
                }
            }
        }
        // Executors going on to their next step may have taken the slots.
        let free = free_slots().min(rt.policies.claim_batch);
        let extra = ahead.available_permits().min(rt.policies.claim_batch - free);
        if free + extra == 0 {
            continue;
        }
        let (Some(reserved), Ok(queued)) = (
            slots.try_take(free),
            Arc::clone(&ahead).try_acquire_many_owned(extra as u32),
        ) else {
            continue;
        };
        in_flight += 1;
        let claim = Claim {
            rt: Arc::clone(&rt),
            queue: Arc::clone(&queue),
            slots: slots.clone(),
            reserved,
            queued,
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

/// One claim of up to `reserved` jobs that start at once and `queued` more
/// that wait for slots, handed to the executors in claim order.
struct Claim {
    rt: Arc<Inner>,
    queue: Arc<str>,
    slots: Slots,
    reserved: SlotPermits,
    /// One permit per job this claim may keep waiting for a slot.
    queued: OwnedSemaphorePermit,
    pool: Arc<ExecutorPool>,
}

impl Claim {
    /// Claims and starts the jobs; returns whether it found any. Slots it
    /// reserved and did not use go back at once.
    async fn run(self) -> bool {
        let Claim {
            rt,
            queue,
            slots,
            mut reserved,
            mut queued,
            pool,
        } = self;
        let limit = reserved.count() + queued.num_permits();
        let mut jobs = claim_jobs(&rt, &queue, limit).await;
        let found_work = !jobs.is_empty();
        if jobs.len() > limit {
            tracing::warn!(
                asked = limit,
                got = jobs.len(),
                "storage returned more jobs than a claim asked for; handing the rest back"
            );
            hand_back(&rt, jobs.split_off(limit)).await;
        }
        let ahead = jobs.split_off(jobs.len().min(reserved.count()));
        for (job, permit) in jobs.into_iter().zip(std::iter::from_fn(|| reserved.split_one())) {
            pool.run(job, WorkerSlot::new(slots.clone(), permit));
        }
        drop(reserved);
        // The jobs claimed ahead wait in line, in claim order; the permits
        // of those storage did not have go back at once. While they wait,
        // they are held like running jobs, so the heartbeat keeps their
        // leases and reports a cancellation or a lost lease.
        drop(queued.split(queued.num_permits() - ahead.len()));
        let mut line = pool.line(queued);
        let ahead: Vec<_> = ahead
            .into_iter()
            .map(|job| {
                let held = job.lease.as_ref().map(|lease| rt.active.insert(job.id, lease.token));
                (job, held)
            })
            .collect();
        let mut ahead = ahead.into_iter();
        while let Some((job, held)) = ahead.next() {
            let Some(permit) = line.next_slot(&slots).await else {
                let mut rest = vec![job];
                for (job, _held) in ahead {
                    rest.push(job);
                }
                hand_back(&rt, rest).await;
                return found_work;
            };
            match held {
                Some(held) if held.lost.is_raised() => {
                    tracing::warn!(job = %job.id, "lease lost while the job waited for a worker; leaving it");
                }
                Some(held) => {
                    pool.run(job, WorkerSlot::new(slots.clone(), permit));
                    held.hand_over();
                }
                None => {}
            }
        }
        found_work
    }
}

/// Waits for a sign that a claim may find work: an announcement, `wake`
/// (a job of the queue put back comes due), or the poll interval.
async fn wait_for_work(rt: &Inner, wake: &Notify, events: &mut broadcast::Receiver<StorageEvent>) {
    let poll = tokio::time::sleep(rt.policies.poll_interval);
    tokio::pin!(poll);
    loop {
        tokio::select! {
            () = rt.stopping.raised() => return,
            () = &mut poll => return,
            () = wake.notified() => return,
            event = events.recv() => match event {
                Ok(StorageEvent::JobChanged(_)) => continue,
                // New work, missed events, or a closed channel: look again.
                Ok(StorageEvent::JobsReady) | Err(_) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::job::Job;
    use crate::runtime::test_storage::{completed, runtime, start_to_done, Faulty};
    use crate::DynamicNext;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_answered_after_its_leases_ran_out_starts_none_of_its_jobs() {
        let storage = Arc::new(Faulty::default());
        storage.slow_claims_ms.store(300, Ordering::SeqCst);
        let runs = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&runs);
        let machine = start_to_done().with_handler(move |_ctx, _step| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok(DynamicNext::to("done")) }
        });
        let rt = runtime(storage.clone(), machine, 200).await;
        let id = rt.submit_job(Job::for_machine("m")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "no step ran under a lease that had run out"
        );
        storage.slow_claims_ms.store(0, Ordering::SeqCst);
        completed(&rt, id).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        rt.shutdown().await.unwrap();
    }
}

//! The background loop that claims the ready jobs of one queue and hands
//! each to an executor task (`pool.rs`), never more steps running at once
//! than the runtime's worker count, nor than the queue's own limit (River's
//! producer: one per queue). It waits until storage announces new work, a
//! job this runtime put back comes due, a worker frees up, or the poll
//! interval passes (for other processes' delayed jobs and expiring leases).
//!
//! A claim reserves its worker slots before it asks storage, so up to
//! [`CLAIMS_IN_FLIGHT`] claims can wait on storage at once without ever
//! claiming more jobs than there are free slots: while one claim's round
//! trip is in flight, the next one is already on its way. With
//! [`Policies::prefetch`](crate::Policies::prefetch), a claim may also ask
//! for that many jobs more, which wait in claim order for slots to free up
//! (graphile-worker's local queue).
//!
//! # Who owns what
//! - [`Producer`]'s fields belong to the producer task alone; claims and
//!   executors reach it only through the shared values named below.
//! - Worker slots ([`Slots`]): the producer reserves them for a claim; each
//!   job started holds one ([`WorkerSlot`]); an executor gives its slot back
//!   while a commit is written and takes one again before its next step.
//!   Whoever holds a slot gives it back; the producer reads how many are
//!   free.
//! - Prefetch permits (`ahead`): the producer takes them for a claim; a job
//!   claimed ahead holds one while it waits in line and gives it back when
//!   it gets a slot.
//! - The line of jobs claimed ahead ([`ExecutorPool::line`]): written by
//!   claims, read by the producer (free slots go to the line before a new
//!   claim) and by executors (none claims its own next job while jobs wait
//!   in line).
//! - Claim reports (`reports`): each claim task sends one, the producer
//!   reads them.
//!
//! # Invariants
//! 1. A claim asks for at most its reserved slots plus its prefetch
//!    permits: every job it gets starts at once in a reserved slot or waits
//!    in line holding a permit, and one storage returns beyond that is
//!    handed back.
//! 2. At most [`CLAIMS_IN_FLIGHT`] claims wait on storage at once.
//! 3. The producer idles only on a report of no work from a claim sent
//!    since it last woke (`round`): an older claim cannot say there is no
//!    work now.
//! 4. Slots are taken queue first, then runtime (`slots.rs`), so no two
//!    takers each hold what the other waits for.
//! 5. A job waiting in line is held in the runtime's active set, so
//!    heartbeats keep its lease; one whose lease was lost is not started.
//! 6. No claim is sent while the runtime's leases are at risk.
//!
//! The producer never sleeps to wait for another task: it waits on a
//! claim's report, a slot, a permit, an announcement, lease health or the
//! poll interval. Its one timed wait is the gather window ([`GATHER`]), a
//! cooldown that lets claims come in batches, over storage whose claims do
//! not run concurrently. Where they do
//! ([`Capabilities::concurrent_claims`](crate::storage::Capabilities::concurrent_claims)),
//! a claim in flight batches the next one by itself, as slots free up
//! while storage answers it, and the wait would only leave them idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::storage::StorageEvent;

use super::claim::{claim_jobs, hand_back};
use super::pool::ExecutorPool;
use super::slots::{SlotPermits, Slots, WorkerSlot};
use super::Inner;

/// How long a claim waits for more worker slots to free up while jobs
/// run, unless claims run concurrently.
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
    events: broadcast::Receiver<StorageEvent>,
) {
    Producer::new(rt, lane, tracker, events).run().await;
}

/// A claim's report: the round it was sent in, and whether it found work.
type Report = (u64, bool);

/// The claim loop of one queue (see the module's documentation for who
/// owns what). Every field is the producer task's alone, except where the
/// value it holds is shared.
struct Producer {
    rt: Arc<Inner>,
    /// The queue it claims from.
    queue: Arc<str>,
    /// The queue's worker slots (shared: see the module documentation).
    slots: Slots,
    /// Notified when a job of the queue put back by this runtime comes due.
    wake: Arc<Notify>,
    /// Storage's announcements.
    events: broadcast::Receiver<StorageEvent>,
    /// Where claims and executors are spawned.
    tracker: TaskTracker,
    /// One permit per job that may wait in line for a slot (shared: see
    /// the module documentation).
    ahead: Arc<Semaphore>,
    /// How many jobs may wait in line: the permits `ahead` holds in all.
    prefetch: usize,
    /// Jobs that may be running or waiting in line at once.
    capacity: usize,
    /// The claim size worth waiting for while jobs are running.
    batch: usize,
    /// Whether a claim waits for room to gather ([`GATHER`]): unless
    /// storage runs claims concurrently.
    gathers: bool,
    /// Claims sent and not yet reported; at most [`CLAIMS_IN_FLIGHT`].
    in_flight: usize,
    /// Bumped each time the producer wakes from idling.
    round: u64,
    /// The claims' reports, and the sender each claim gets a clone of.
    reports: mpsc::UnboundedReceiver<Report>,
    report_to: mpsc::UnboundedSender<Report>,
    /// The executors the claimed jobs run on (and the line they wait in).
    pool: Arc<ExecutorPool>,
}

impl Producer {
    fn new(rt: Arc<Inner>, lane: Lane, tracker: TaskTracker, events: broadcast::Receiver<StorageEvent>) -> Self {
        let Lane {
            queue,
            slots,
            workers,
            wake,
        } = lane;
        let queue: Arc<str> = Arc::from(queue);
        let prefetch = rt.policies.prefetch;
        let capacity = workers + prefetch;
        let batch = (capacity.min(rt.policies.claim_batch) / 2).max(1);
        let gathers = !rt.storage.capabilities().concurrent_claims;
        let (report_to, reports) = mpsc::unbounded_channel();
        let pool = Arc::new(ExecutorPool::new(Arc::clone(&rt), Arc::clone(&queue), tracker.clone()));
        Producer {
            rt,
            queue,
            slots,
            wake,
            events,
            tracker,
            ahead: Arc::new(Semaphore::new(prefetch)),
            prefetch,
            capacity,
            batch,
            gathers,
            in_flight: 0,
            round: 0,
            reports,
            report_to,
            pool,
        }
    }

    /// The loop: settle reports, idle if there is no work, wait for room,
    /// let room gather (see [`GATHER`]), send a claim. Returns once the
    /// runtime stops.
    async fn run(mut self) {
        loop {
            if self.rt.stopping.is_raised() {
                return;
            }
            let Some(idle) = self.settle_reports().await else {
                return;
            };
            if idle {
                wait_for_work(&self.rt, &self.wake, &mut self.events).await;
                self.round += 1;
                continue;
            }
            if self.rt.lease_health.at_risk() {
                // No claim while the leases it would take may not be kept.
                tokio::select! {
                    () = self.rt.stopping.raised() => return,
                    () = self.rt.lease_health.safe() => {}
                }
                continue;
            }
            let room = self.free_slots() + self.ahead.available_permits();
            if room == 0 {
                if !self.wait_for_room().await {
                    return;
                }
                continue;
            }
            if self.gathers && room < self.batch && room < self.capacity && !self.gather().await {
                return;
            }
            self.send_claim();
        }
    }

    /// Takes the reports that came in, waiting for one if every claim is
    /// in flight; returns whether one says there is no work now, or `None`
    /// once the runtime stops.
    async fn settle_reports(&mut self) -> Option<bool> {
        let mut idle = false;
        while let Ok(report) = self.reports.try_recv() {
            idle |= self.settle(report);
        }
        if self.in_flight == CLAIMS_IN_FLIGHT {
            tokio::select! {
                () = self.rt.stopping.raised() => return None,
                Some(report) = self.reports.recv() => idle |= self.settle(report),
            }
        }
        Some(idle)
    }

    /// Counts `report` in; whether it says there is no work now.
    fn settle(&mut self, (claim_round, found_work): Report) -> bool {
        self.in_flight -= 1;
        !found_work && claim_round == self.round
    }

    /// Free slots for a new claim: none while jobs wait in line for them.
    fn free_slots(&self) -> usize {
        if self.pool.queued() > 0 {
            0
        } else {
            self.slots.available()
        }
    }

    /// Waits until a slot or a prefetch permit frees up; `false` once the
    /// runtime stops. Jobs waiting in line hold `ahead` permits, so with
    /// jobs in line a permit comes back as each one starts.
    async fn wait_for_room(&self) -> bool {
        let in_line = self.pool.queued() > 0;
        tokio::select! {
            () = self.rt.stopping.raised() => false,
            permit = self.slots.take(1), if !in_line => {
                drop(permit);
                true
            }
            permit = Arc::clone(&self.ahead).acquire_owned(), if self.prefetch > 0 => {
                drop(permit);
                true
            }
        }
    }

    /// Jobs are running: lets room gather for a moment ([`GATHER`]), so
    /// claims (and the commits that follow them) come in batches rather
    /// than one job per round trip; `false` once the runtime stops. While
    /// claimed jobs wait for slots, they are first in the slots' queue: it
    /// waits for them to start rather than queue up in front of them.
    async fn gather(&self) -> bool {
        let waiting = self.prefetch - self.ahead.available_permits();
        tokio::select! {
            () = self.rt.stopping.raised() => false,
            () = tokio::time::sleep(GATHER) => true,
            permits = self.slots.take(self.batch), if waiting == 0 => {
                drop(permits);
                true
            }
            permits = Arc::clone(&self.ahead).acquire_many_owned(waiting.min(self.batch) as u32), if waiting > 0 => {
                drop(permits);
                true
            }
        }
    }

    /// Reserves the free slots and prefetch permits (executors going on to
    /// their next step may have taken some meanwhile) and sends a claim
    /// for that many jobs.
    fn send_claim(&mut self) {
        let free = self.free_slots().min(self.rt.policies.claim_batch);
        let extra = self.ahead.available_permits().min(self.rt.policies.claim_batch - free);
        if free + extra == 0 {
            return;
        }
        let (Some(reserved), Ok(queued)) = (
            self.slots.try_take(free),
            Arc::clone(&self.ahead).try_acquire_many_owned(extra as u32),
        ) else {
            return;
        };
        self.in_flight += 1;
        let claim = Claim {
            rt: Arc::clone(&self.rt),
            queue: Arc::clone(&self.queue),
            slots: self.slots.clone(),
            reserved,
            queued,
            pool: Arc::clone(&self.pool),
        };
        let report_to = self.report_to.clone();
        let round = self.round;
        self.tracker.spawn(async move {
            let found_work = claim.run().await;
            let _ = report_to.send((round, found_work));
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

    use tokio::sync::Semaphore;

    use crate::job::Job;
    use crate::runtime::test_storage::{completed, runtime, start_to_done, Faulty};
    use crate::runtime::Runtime;
    use crate::{DynamicNext, Policies};

    /// With three of four slots busy (one free, less than the two jobs a
    /// claim is worth gathering room for), how long after a job is
    /// submitted the claim that finds it is answered. Tokio's clock is
    /// paused: it moves on only while every task waits for a timer.
    async fn wait_before_a_small_claim(concurrent_claims: bool) -> Duration {
        let storage = Arc::new(Faulty::default());
        storage.concurrent_claims.store(concurrent_claims, Ordering::SeqCst);
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicU64::new(0));
        let (held, counted) = (Arc::clone(&gate), Arc::clone(&started));
        let machine = start_to_done().with_handler(move |_ctx, _step| {
            counted.fetch_add(1, Ordering::SeqCst);
            let gate = Arc::clone(&held);
            async move {
                let _pass = gate.acquire().await;
                Ok(DynamicNext::to("done"))
            }
        });
        let rt = Runtime::builder()
            .shared_storage(storage.clone())
            .register(machine)
            .workers(4)
            .policies(Policies {
                claim_batch: 4,
                prefetch: 0,
                ..Policies::default()
            })
            .build()
            .await
            .unwrap();
        for _ in 0..3 {
            rt.submit_job(Job::for_machine("m")).await.unwrap();
        }
        while started.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let the producer's claims for the free slot find nothing and idle.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let submitted = tokio::time::Instant::now();
        rt.submit_job(Job::for_machine("m")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(started.load(Ordering::SeqCst), 4, "the fourth job started");
        let answered = storage.claims_answered.lock().unwrap().clone();
        let claimed = answered.into_iter().find(|&at| at >= submitted).unwrap();
        gate.add_permits(4);
        rt.shutdown().await.unwrap();
        claimed - submitted
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn where_claims_run_concurrently_a_small_claim_goes_at_once() {
        assert_eq!(wait_before_a_small_claim(true).await, Duration::ZERO);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn elsewhere_a_small_claim_waits_for_room_to_gather() {
        assert_eq!(wait_before_a_small_claim(false).await, super::GATHER);
    }

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

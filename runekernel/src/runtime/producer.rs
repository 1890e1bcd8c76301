//! The background loop that claims ready jobs and starts an executor for
//! each, never more steps running at once than the runtime's worker count
//! (River's producer). It sleeps until storage announces new work, a job this runtime
//! put back comes due, a worker frees up, or the poll interval passes (for
//! other processes' delayed jobs and expiring leases).

use std::sync::Arc;

use std::time::Duration;

use tokio::sync::{broadcast, Semaphore};
use tokio_util::task::TaskTracker;

use crate::storage::{ClaimRequest, StorageEvent};

use super::executor::{run_claimed, WorkerSlot};
use super::Inner;

/// How long a claim waits for more worker slots to free up while jobs run.
const GATHER: Duration = Duration::from_millis(1);

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
    loop {
        if rt.stopping.is_cancelled() {
            return;
        }
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                () = rt.stopping.cancelled() => return,
                permit = Arc::clone(&slots).acquire_owned() => drop(permit),
            }
            continue;
        }
        if free < batch && free < workers {
            // Jobs are running: let slots gather for a moment, so claims
            // (and the commits that follow them) come in batches rather
            // than one job per round trip.
            tokio::select! {
                () = rt.stopping.cancelled() => return,
                () = tokio::time::sleep(GATHER) => {}
                permits = Arc::clone(&slots).acquire_many_owned(batch as u32) => drop(permits),
            }
        }
        // Executors going on to their next step may have taken the slots.
        let free = slots.available_permits();
        if free == 0 {
            continue;
        }
        let request = ClaimRequest {
            worker: rt.worker_id.clone(),
            machines: rt.registry.names().to_vec(),
            limit: free.min(rt.policies.claim_batch),
            now: rt.clock.now(),
            lease_ms: rt.policies.lease.as_millis() as u64,
        };
        match rt.storage.claim(request).await {
            Ok(jobs) if !jobs.is_empty() => {
                for job in jobs {
                    let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                        return;
                    };
                    let rt = Arc::clone(&rt);
                    let slot = WorkerSlot::new(Arc::clone(&slots), permit);
                    tracker.spawn(async move {
                        run_claimed(&rt, job, Some(slot)).await;
                    });
                }
            }
            Ok(_) => wait_for_work(&rt, &mut events).await,
            Err(error) => {
                tracing::error!(%error, "claiming jobs failed; retrying");
                tokio::select! {
                    () = rt.stopping.cancelled() => return,
                    () = tokio::time::sleep(rt.policies.poll_interval) => {}
                }
            }
        }
    }
}

/// Waits for a sign that a claim may find work.
async fn wait_for_work(rt: &Inner, events: &mut broadcast::Receiver<StorageEvent>) {
    let poll = tokio::time::sleep(rt.policies.poll_interval);
    tokio::pin!(poll);
    loop {
        tokio::select! {
            () = rt.stopping.cancelled() => return,
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

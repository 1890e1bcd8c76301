//! The pruner: deletes finished jobs once their state's
//! [`Retention`](super::Retention) has passed. Every runtime with workers
//! runs the loop, but a pass prunes only while its runtime holds the
//! storage's [`DUTY`], so one process prunes at a time whatever their
//! number; the others find the duty held and wait for the next interval
//! (and take it over once its holder stops renewing it).

use std::sync::Arc;
use std::time::Duration;

use crate::storage::{JobState, StorageError};

use super::clock::millis;
use super::Inner;

/// The storage duty a pruning runtime holds.
pub(crate) const DUTY: &str = "prune";

/// Prunes every `retention.interval` until the runtime stops.
pub(crate) async fn prune_loop(rt: Arc<Inner>) {
    let interval = rt.policies.retention.interval;
    loop {
        tokio::select! {
            () = rt.stopping.raised() => return,
            () = rt.clock.sleep(interval) => {}
        }
        match prune_pass(&rt).await {
            Ok(Some(pruned)) if pruned > 0 => tracing::info!(pruned, "pruned finished jobs"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning finished jobs failed; trying again at the next interval"),
        }
    }
}

/// One pass: while this runtime holds the duty, deletes the finished jobs
/// of each state whose retention has passed, a batch per storage call.
/// Returns how many it deleted, or `None` if another runtime holds the
/// duty.
pub(crate) async fn prune_pass(rt: &Inner) -> Result<Option<u64>, StorageError> {
    let retention = &rt.policies.retention;
    // Held long enough to last from one pass to the next: a holder that
    // stops renewing it hands it on within three intervals.
    let hold = millis(retention.interval.saturating_mul(3).max(Duration::from_secs(1)));
    let hold_ms = u64::try_from(hold).unwrap_or(u64::MAX);
    let batch = retention.batch.max(1);
    let mut pruned = 0;
    for status in JobState::FINISHED {
        let Some(keep) = retention.keep(status) else { continue };
        loop {
            // Renewed before every batch: a pass that outlives its hold
            // stops rather than prune beside the next holder.
            let now = rt.clock.now();
            if !rt.storage.try_duty(DUTY, &rt.worker_id, now, hold_ms).await? {
                return Ok((pruned > 0).then_some(pruned));
            }
            let before = now.saturating_sub(millis(keep));
            let deleted = rt.storage.prune_batch(status, before, batch).await?;
            pruned += deleted;
            if deleted < u64::try_from(batch).unwrap_or(u64::MAX) || rt.stopping.is_raised() {
                break;
            }
            // Between batches, whatever else waits on storage goes first.
            tokio::task::yield_now().await;
        }
    }
    Ok(Some(pruned))
}

//! Two handles on one database, as two processes would have: what one does
//! to a job the other holds must count when the holder commits.

use std::sync::Arc;

use super::support::{claim_request, finish, move_on, new_job};
use crate::{CancelOutcome, JobState, Storage};

/// `holder` claims two jobs; `other` extends the first one's lease and asks
/// for the second one's cancellation; then `holder` commits both. The
/// commits must see the stored lease (not the one the holder claimed) and
/// keep the cancellation request.
///
/// # Panics
/// When a commit misses what `other` did.
pub async fn changes_by_another_process_count(holder: Arc<dyn Storage>, other: Arc<dyn Storage>) {
    holder.insert(new_job("m", 1)).await.unwrap();
    holder.insert(new_job("m", 2)).await.unwrap();
    let claimed = holder.claim(claim_request(&["m"], 2, 0)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let (extended, cancelled) = (&claimed[0], &claimed[1]);
    assert_eq!(extended.lease.as_ref().unwrap().expires_at, 30_000);
    other
        .heartbeat(extended.id, extended.lease.as_ref().unwrap().token, 20_000, 30_000)
        .await
        .unwrap();
    assert!(matches!(
        other.cancel(cancelled.id, 1, None).await.unwrap(),
        CancelOutcome::Requested
    ));
    // At 40 000 the lease the holder claimed has run out, the stored one not.
    let done = holder.commit(finish(extended, 40_000)).await.unwrap();
    assert_eq!(done.status, JobState::Completed, "the commit saw the extended lease");
    let moved = holder.commit(move_on(cancelled, 2, 30_000)).await.unwrap();
    assert!(moved.cancel_requested, "the commit kept the cancellation request");
    let stored = holder.get(cancelled.id).await.unwrap().unwrap();
    assert!(stored.cancel_requested, "the stored job kept the cancellation request");
}

//! Retention: pruning finished jobs in batches, by lifecycle state, and the
//! duties that keep it to one process at a time.

use std::sync::Arc;

use super::support::{claim_request, finish, held, new_job};
use crate::{JobState, Outcome, Storage, StorageError};

/// Inserts `n` jobs of machine `m` with idempotency keys `key-{at}-{failed}-i`,
/// claims them and finishes them at time `at`, failed or completed; returns
/// their ids.
async fn finished(s: &Arc<dyn Storage>, n: u64, at: i64, failed: bool) -> Vec<crate::JobId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut job = new_job("m", i);
        job.idempotency_key = Some(format!("key-{at}-{failed}-{i}"));
        s.insert(job.clone()).await.unwrap();
        ids.push(job.id);
    }
    for job in s.claim(claim_request(&["m"], n as usize, at)).await.unwrap() {
        let commit = if failed {
            held(&job, at, Outcome::Failed { error: "no".into() })
        } else {
            finish(&job, at)
        };
        s.commit(commit).await.unwrap();
    }
    ids
}

/// A batch deletes at most its limit of the jobs in one finished state
/// written before the cutoff, with their history and keys, and nothing else.
pub async fn prune_batch_takes_one_state_and_at_most_its_limit(s: Arc<dyn Storage>) {
    let completed = finished(&s, 5, 10, false).await;
    let failed = finished(&s, 2, 10, true).await;
    let recent = finished(&s, 1, 100, false).await;
    assert_eq!(s.prune_batch(JobState::Completed, 50, 3).await.unwrap(), 3);
    assert_eq!(
        s.prune_batch(JobState::Completed, 50, 3).await.unwrap(),
        2,
        "fewer than the limit: done"
    );
    assert_eq!(s.prune_batch(JobState::Completed, 50, 3).await.unwrap(), 0);
    for id in &completed {
        assert!(s.get(*id).await.unwrap().is_none());
        assert!(s.history(*id).await.unwrap().is_empty(), "history goes with the job");
    }
    for id in failed.iter().chain(&recent) {
        assert!(s.get(*id).await.unwrap().is_some(), "other states and recent jobs stay");
    }
    assert_eq!(s.prune_batch(JobState::Failed, 50, 10).await.unwrap(), 2);
    // The keys are free again.
    let mut again = new_job("m", 0);
    again.idempotency_key = Some("key-10-false-0".into());
    assert!(s.insert(again).await.unwrap().created);
    for status in [JobState::Pending, JobState::Running] {
        let err = s.prune_batch(status, 50, 10).await.unwrap_err();
        assert!(matches!(err, StorageError::Invalid(_)), "{err}");
    }
}

/// One owner holds a duty at a time, renews it, and loses it only once its
/// hold has run out; duties are independent.
pub async fn a_duty_has_one_holder_at_a_time(s: Arc<dyn Storage>) {
    assert!(s.try_duty("prune", "a", 0, 100).await.unwrap());
    assert!(!s.try_duty("prune", "b", 50, 100).await.unwrap(), "a holds it");
    assert!(s.try_duty("prune", "a", 60, 100).await.unwrap(), "a renews it, to 160");
    assert!(!s.try_duty("prune", "b", 159, 100).await.unwrap());
    assert!(
        s.try_duty("other", "b", 159, 100).await.unwrap(),
        "another duty is apart"
    );
    assert!(s.try_duty("prune", "b", 160, 100).await.unwrap(), "a's hold ran out");
    assert!(!s.try_duty("prune", "a", 200, 100).await.unwrap(), "b holds it now");
}

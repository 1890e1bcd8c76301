//! Leases: expiry, takeover and fencing, heartbeats, release, cancellation.

use std::sync::Arc;

use super::support::{claim_request, finish, held, move_on, new_job};
use crate::{CancelOutcome, JobState, Outcome, Storage, StorageError};

pub async fn expired_lease_is_reclaimed_and_fenced(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let first = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    // Still leased: nobody else gets it.
    assert!(s.claim(claim_request(&["m"], 1, 29_999)).await.unwrap().is_empty());
    // The first worker cannot commit once its lease has run out...
    let err = s.commit(finish(&first, 30_000)).await.unwrap_err();
    assert!(matches!(err, StorageError::LeaseLost { .. }), "{err}");
    // ...and another worker takes the job over.
    let mut request = claim_request(&["m"], 1, 30_000);
    request.worker = "worker-2".into();
    let second = s.claim(request).await.unwrap().remove(0);
    assert_eq!(second.id, first.id);
    assert_eq!(second.lease.as_ref().unwrap().owner, "worker-2");
    // The first worker is fenced out even at a time its lease would cover.
    let err = s.commit(finish(&first, 10)).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let err = s
        .heartbeat(first.id, first.lease.as_ref().unwrap().token, 10, 30_000)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::LeaseLost { .. }), "{err}");
    // The new owner commits.
    let done = s.commit(finish(&second, 30_001)).await.unwrap();
    assert_eq!(done.status, JobState::Completed);
    assert_eq!(s.history(first.id).await.unwrap().len(), 2);
}

pub async fn heartbeat_extends_the_lease(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let token = job.lease.as_ref().unwrap().token;
    let beat = s.heartbeat(job.id, token, 20_000, 30_000).await.unwrap();
    assert_eq!(beat.expires_at, 50_000);
    assert!(!beat.cancel_requested);
    assert!(
        s.claim(claim_request(&["m"], 1, 45_000)).await.unwrap().is_empty(),
        "extended lease holds"
    );
    let done = s.commit(finish(&job, 45_000)).await.unwrap();
    assert_eq!(done.status, JobState::Completed);
}

/// One call beats for many jobs, each on its own terms: held leases are
/// extended and report a cancellation request, a lost or unknown one fails
/// alone.
pub async fn heartbeat_batch_extends_each_lease_on_its_own_terms(s: Arc<dyn Storage>) {
    for n in 0..3 {
        s.insert(new_job("m", n)).await.unwrap();
    }
    let jobs = s.claim(claim_request(&["m"], 3, 0)).await.unwrap();
    let token = |n: usize| jobs[n].lease.as_ref().unwrap().token;
    assert_eq!(s.cancel(jobs[1].id, 10, None).await.unwrap(), CancelOutcome::Requested);
    let stale = crate::LeaseToken(token(2).0 + 1_000);
    let unknown = crate::JobId::new();
    let leases = vec![
        (jobs[0].id, token(0)),
        (jobs[1].id, token(1)),
        (jobs[2].id, stale),
        (unknown, token(0)),
    ];
    let results = s.heartbeat_batch(leases, 20_000, 30_000).await.unwrap();
    assert_eq!(results.len(), 4);
    let beat = |n: usize| results[n].as_ref().map(|b| (b.expires_at, b.cancel_requested)).ok();
    assert_eq!((beat(0), beat(1)), (Some((50_000, false)), Some((50_000, true))));
    assert!(
        matches!(results[2], Err(StorageError::LeaseLost { .. })),
        "{:?}",
        results[2]
    );
    assert!(results[3].is_err(), "{:?}", results[3]);
    let reclaimed = s.claim(claim_request(&["m"], 3, 45_000)).await.unwrap();
    assert_eq!(
        reclaimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![jobs[2].id],
        "the extended leases hold; the one not extended ran out"
    );
    assert!(s.heartbeat_batch(Vec::new(), 0, 1).await.unwrap().is_empty());
}

/// A lease extended twice, by a heartbeat and by a commit that keeps the job
/// running, holds until its last expiry and runs out then.
pub async fn an_extended_lease_runs_out_at_its_last_expiry(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let token = job.lease.as_ref().unwrap().token;
    s.heartbeat(job.id, token, 20_000, 30_000).await.unwrap();
    let moved = s.commit(move_on(&job, 40_000, 90_000)).await.unwrap();
    for now in [30_000, 50_000, 89_999] {
        assert!(
            s.claim(claim_request(&["m"], 1, now)).await.unwrap().is_empty(),
            "the extended lease holds at {now}"
        );
    }
    let again = s.claim(claim_request(&["m"], 1, 90_000)).await.unwrap();
    assert_eq!(again.len(), 1, "the lease ran out at its last expiry");
    assert_eq!((again[0].id, again[0].state.as_str()), (moved.id, "next"));
    assert!(again[0].lease.as_ref().unwrap().token > token);
}

pub async fn release_hands_the_job_back(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    s.release(job.id, job.lease.as_ref().unwrap().token, 5).await.unwrap();
    let record = s.get(job.id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.attempts, record.run_at),
        (JobState::Pending, 0, 5)
    );
    assert!(record.lease.is_none());
    assert_eq!(record.version, 0, "a release is not a transition");
    let again = s.claim(claim_request(&["m"], 1, 5)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    let err = s
        .release(job.id, job.lease.as_ref().unwrap().token, 6)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::LeaseLost { .. }), "{err}");
}

pub async fn cancel_pending_running_and_finished(s: Arc<dyn Storage>) {
    let pending = new_job("m", 1);
    s.insert(pending.clone()).await.unwrap();
    match s.cancel(pending.id, 3, Some("no longer needed".into())).await.unwrap() {
        CancelOutcome::Cancelled(record) => {
            assert_eq!(record.status, JobState::Cancelled);
            assert_eq!(record.version, 1);
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    let history = s.history(pending.id).await.unwrap();
    assert_eq!(history[1].status, JobState::Cancelled);
    assert_eq!(history[1].error.as_deref(), Some("no longer needed"));
    assert!(
        s.claim(claim_request(&["m"], 5, 10)).await.unwrap().is_empty(),
        "cancelled jobs are not claimed"
    );

    let running = new_job("m", 2);
    s.insert(running.clone()).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 10)).await.unwrap().remove(0);
    assert_eq!(s.cancel(running.id, 11, None).await.unwrap(), CancelOutcome::Requested);
    let token = job.lease.as_ref().unwrap().token;
    assert!(s.heartbeat(job.id, token, 12, 30_000).await.unwrap().cancel_requested);
    assert!(s.get(job.id).await.unwrap().unwrap().cancel_requested);
    let stop = super::support::held(&job, 13, crate::Outcome::Cancelled { reason: "asked".into() });
    let record = s.commit(stop).await.unwrap();
    assert_eq!(record.status, JobState::Cancelled);
    assert!(!record.cancel_requested);
    assert_eq!(
        s.cancel(running.id, 14, None).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobState::Cancelled)
    );
    let err = s.cancel(crate::JobId::new(), 1, None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
}

/// A request to cancel a running job keeps the first reason given: the
/// stored job, a commit's answer and the caller's copy brought up to date
/// all show it until the job finishes, and the cancellation records it.
pub async fn a_cancel_request_keeps_its_reason_until_the_job_finishes(s: Arc<dyn Storage>) {
    let job = new_job("m", 1);
    s.insert(job.clone()).await.unwrap();
    let claimed = s.claim(claim_request(&["m"], 1, 10)).await.unwrap().remove(0);
    assert_eq!(claimed.cancel_reason, None);
    for (now, reason) in [(11, "cancelled by admin:ops"), (12, "cancelled by admin:later")] {
        let outcome = s.cancel(job.id, now, Some(reason.into())).await.unwrap();
        assert_eq!(outcome, CancelOutcome::Requested);
    }
    let stored = s.get(job.id).await.unwrap().unwrap();
    assert!(stored.cancel_requested);
    assert_eq!(
        stored.cancel_reason.as_deref(),
        Some("cancelled by admin:ops"),
        "the first reason stands"
    );
    // A step committed meanwhile learns of the request and its reason.
    let step = move_on(&claimed, 13, 60_000);
    let answer = s
        .commit_batch(std::slice::from_ref(&step))
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(answer.cancel_requested);
    assert_eq!(answer.cancel_reason.as_deref(), Some("cancelled by admin:ops"));
    let mut copy = claimed.clone();
    copy.committed(step, answer);
    assert_eq!(
        Some(&copy),
        s.get(job.id).await.unwrap().as_ref(),
        "the caller's copy is up to date"
    );
    let reason = copy.cancel_reason.clone().unwrap_or_default();
    let done = s.commit(held(&copy, 14, Outcome::Cancelled { reason })).await.unwrap();
    assert_eq!((done.cancel_requested, done.cancel_reason), (false, None));
    let history = s.history(job.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.status, JobState::Cancelled);
    assert_eq!(last.error.as_deref(), Some("cancelled by admin:ops"));
}

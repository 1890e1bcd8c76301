//! Commits: compare-and-set, state and history, kept leases, batches.

use std::sync::Arc;

use serde_json::json;

use super::support::{claim_request, finish, move_on, new_job};
use crate::{JobState, StateChange, Storage, StorageError};

pub async fn commit_is_compare_and_set(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let mut stale = finish(&job, 1);
    stale.expected_version = 5;
    let err = s.commit(stale).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::VersionConflict {
                expected: 5,
                actual: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_conflict());
    let record = s.commit(finish(&job, 1)).await.unwrap();
    assert_eq!(record.version, 1);
    // The same commit again is now stale.
    let err = s.commit(finish(&job, 2)).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(
        s.history(job.id).await.unwrap().len(),
        2,
        "a failed commit appends nothing"
    );
}

pub async fn commit_moves_state_and_appends_history(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let mut step = finish(&job, 7);
    step.change = Some(StateChange {
        state: "middle".into(),
        payload: json!({"k": "v"}),
        fingerprint: 8,
    });
    step.status = JobState::Pending;
    step.run_at = 9;
    step.attempts = 0;
    let record = s.commit(step).await.unwrap();
    assert_eq!((record.state.as_str(), record.status), ("middle", JobState::Pending));
    assert_eq!(record.payload, json!({"k": "v"}));
    assert_eq!((record.fingerprint, record.run_at, record.attempts), (8, 9, 0));
    assert!(record.lease.is_none());
    assert_eq!(record.updated_at, 7);
    let history = s.history(job.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.seq, last.from.as_deref(), last.to.as_str()),
        (1, Some("start"), "middle")
    );
    assert_eq!(last.payload, json!({"k": "v"}));
    assert_eq!(last.worker.as_deref(), Some("worker-1"));
    assert_eq!(last.at, 7);
    assert_eq!(s.get(job.id).await.unwrap().unwrap(), record);
}

/// `commit_into` leaves in the caller's record what `get` reads back, step
/// after step under one lease, whether or not the state changes, and
/// leaves the record as it was when the commit is rejected.
pub async fn commit_into_updates_the_callers_record(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let mut record = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let step = move_on(&record, 5, 40_000);
    s.commit_into(step, &mut record).await.unwrap();
    assert_eq!((record.version, record.status), (1, JobState::Running));
    assert_eq!(Some(&record), s.get(record.id).await.unwrap().as_ref());
    // A lifecycle-only commit: state and payload are read back, not kept
    // from the commit (it has none).
    let mut retry = finish(&record, 6);
    retry.change = None;
    retry.status = JobState::Pending;
    retry.error = Some("try again".into());
    // As a runtime does, the step took the payload.
    record.payload = serde_json::Value::Null;
    s.commit_into(retry, &mut record).await.unwrap();
    assert_eq!(Some(&record), s.get(record.id).await.unwrap().as_ref());
    assert_eq!(record.last_error.as_deref(), Some("try again"));
    let before = record.clone();
    let mut stale = finish(&record, 7);
    stale.expected_version = 0;
    let err = s.commit_into(stale, &mut record).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(record, before, "a rejected commit leaves the record alone");
}

pub async fn commit_can_keep_the_lease(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let mut step = finish(&job, 5);
    step.change = Some(StateChange {
        state: "middle".into(),
        payload: json!(1),
        fingerprint: 7,
    });
    step.status = JobState::Running;
    step.lease_until = Some(40_000);
    let record = s.commit(step).await.unwrap();
    assert_eq!(record.status, JobState::Running);
    let lease = record.lease.clone().expect("the lease is kept");
    assert_eq!(lease.token, job.lease.as_ref().unwrap().token);
    assert_eq!(lease.expires_at, 40_000);
    // Not claimable while the kept lease runs.
    assert!(s.claim(claim_request(&["m"], 1, 35_000)).await.unwrap().is_empty());
    // The same lease commits the next step.
    let done = s.commit(finish(&record, 6)).await.unwrap();
    assert_eq!(done.status, JobState::Completed);
    assert_eq!(done.version, 2);
}

pub async fn lease_less_commit_of_running_job_is_rejected(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let mut admin = finish(&job, 1);
    admin.lease = None;
    let err = s.commit(admin).await.unwrap_err();
    assert!(matches!(err, StorageError::JobRunning { .. }), "{err}");
    // A lease-less commit of a pending job is fine (an admin change).
    let pending = new_job("m", 2);
    s.insert(pending.clone()).await.unwrap();
    let record = s.get(pending.id).await.unwrap().unwrap();
    let mut admin = finish(&record, 2);
    admin.status = JobState::Pending;
    assert_eq!(s.commit(admin).await.unwrap().state, "done");
}

pub async fn commit_batch_applies_each_on_its_own_terms(s: Arc<dyn Storage>) {
    for n in 0..3 {
        s.insert(new_job("m", n)).await.unwrap();
    }
    let claimed = s.claim(claim_request(&["m"], 3, 0)).await.unwrap();
    let mut commits: Vec<_> = claimed.iter().map(|j| finish(j, 1)).collect();
    commits[1].expected_version = 9;
    let results = s.commit_batch(commits).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(results[1], Err(StorageError::VersionConflict { .. })));
    let middle = s.get(claimed[1].id).await.unwrap().unwrap();
    assert_eq!(middle.status, JobState::Running, "the failed commit changed nothing");
}

/// An error message or a worker name with a NUL character (a handler's
/// message can hold anything) is stored, readable, and fails no commit of
/// its batch.
pub async fn text_with_nul_characters_is_stored(s: Arc<dyn Storage>) {
    for n in 0..2 {
        s.insert(new_job("m", n)).await.unwrap();
    }
    let mut request = claim_request(&["m"], 2, 0);
    request.worker = "worker\0one".to_owned();
    let claimed = s.claim(request).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let retry = crate::Commit {
        change: None,
        status: JobState::Pending,
        run_at: 5,
        error: Some("bad\0byte".to_owned()),
        ..finish(&claimed[0], 1)
    };
    let results = s.commit_batch(vec![retry, finish(&claimed[1], 1)]).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let retried = s.get(claimed[0].id).await.unwrap().unwrap();
    let error = retried.last_error.unwrap_or_default();
    assert!(error.starts_with("bad") && error.ends_with("byte"), "{error:?}");
    let history = s.history(claimed[0].id).await.unwrap();
    let worker = history.last().and_then(|e| e.worker.clone()).unwrap_or_default();
    assert!(worker.starts_with("worker") && worker.ends_with("one"), "{worker:?}");
    let finished = s.get(claimed[1].id).await.unwrap().unwrap();
    assert_eq!(finished.status, JobState::Completed);
}

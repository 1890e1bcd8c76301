//! Commits: compare-and-set, state and history, kept leases, batches.

use std::sync::Arc;

use serde_json::json;

use super::support::{claim_request, finish, held, move_on, new_job};
use crate::{Commit, Committed, JobState, Outcome, StateChange, Storage, StorageError};

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
    let to = StateChange {
        state: "middle".into(),
        payload: json!({"k": "v"}),
        fingerprint: 8,
    };
    let record = s
        .commit(held(&job, 7, Outcome::Advanced { to, run_at: 9 }))
        .await
        .unwrap();
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
/// after step under one lease, whether or not the state changes (but for
/// a payload the caller took out of its copy and the commit does not
/// replace), and leaves the record as it was when the commit is rejected.
pub async fn commit_into_updates_the_callers_record(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let mut record = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let step = move_on(&record, 5, 40_000);
    s.commit_into(step, &mut record).await.unwrap();
    assert_eq!((record.version, record.status), (1, JobState::Running));
    assert_eq!(Some(&record), s.get(record.id).await.unwrap().as_ref());
    // A lifecycle-only commit. As a runtime does, the step took the
    // payload: the record may leave it out or read it back.
    let retry = held(
        &record,
        6,
        Outcome::Retrying {
            run_at: 6,
            error: "try again".into(),
        },
    );
    record.payload = serde_json::Value::Null;
    s.commit_into(retry, &mut record).await.unwrap();
    let mut stored = s.get(record.id).await.unwrap().unwrap();
    assert!(
        record.payload.is_null() || record.payload == stored.payload,
        "{:?}",
        record.payload
    );
    stored.payload = record.payload.clone();
    assert_eq!(record, stored);
    assert_eq!(record.last_error.as_deref(), Some("try again"));
    let before = record.clone();
    let mut stale = Commit::unleased(&record, 7, None, Outcome::Cancelled { reason: "late".into() });
    stale.expected_version = 0;
    let err = s.commit_into(stale, &mut record).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(record, before, "a rejected commit leaves the record alone");
}

pub async fn commit_can_keep_the_lease(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let record = s.commit(move_on(&job, 5, 40_000)).await.unwrap();
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
    let to = super::support::to(&record, "done", json!(null));
    let admin = Commit::unleased(&record, 2, Some("admin".into()), Outcome::Advanced { to, run_at: 2 });
    assert_eq!(s.commit(admin).await.unwrap().state, "done");
}

pub async fn commit_batch_applies_each_on_its_own_terms(s: Arc<dyn Storage>) {
    for n in 0..3 {
        s.insert(new_job("m", n)).await.unwrap();
    }
    let claimed = s.claim(claim_request(&["m"], 3, 0)).await.unwrap();
    let mut commits: Vec<_> = claimed.iter().map(|j| finish(j, 1)).collect();
    commits[1].expected_version = 9;
    let results = s.commit_batch(&commits).await.unwrap();
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
    let retry = held(
        &claimed[0],
        1,
        Outcome::Retrying {
            run_at: 5,
            error: "bad\0byte".to_owned(),
        },
    );
    let results = s.commit_batch(&[retry, finish(&claimed[1], 1)]).await.unwrap();
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

/// Every outcome writes what it names, and only that: lifecycle, state and
/// payload, run time, attempts, lease, last error and cancellation request;
/// and its history entry records the state it came from, the attempt it
/// was made at, the error and the payload after.
pub async fn each_outcome_writes_what_it_names(s: Arc<dyn Storage>) {
    let names = [
        "continued",
        "advanced",
        "completed",
        "retrying",
        "snoozed",
        "failed",
        "cancelled",
    ];
    for name in names {
        let new = new_job(name, 1);
        s.insert(new.clone()).await.unwrap();
        // A first attempt that failed, then a second claim: attempts 2.
        let first = s.claim(claim_request(&[name], 1, 0)).await.unwrap().remove(0);
        let retry = Outcome::Retrying {
            run_at: 0,
            error: "earlier".into(),
        };
        s.commit(held(&first, 1, retry)).await.unwrap();
        let job = s.claim(claim_request(&[name], 1, 2)).await.unwrap().remove(0);
        assert_eq!(job.attempts, 2, "{name}");
        // Cancellation asked for while the step runs.
        assert_eq!(
            s.cancel(job.id, 3, None).await.unwrap(),
            crate::CancelOutcome::Requested
        );
        let to = super::support::to(&job, "next", json!({ "next": true }));
        let outcome = match name {
            "continued" => Outcome::Continued {
                to,
                lease_until: 50_000,
            },
            "advanced" => Outcome::Advanced { to, run_at: 77 },
            "completed" => Outcome::Completed { to },
            "retrying" => Outcome::Retrying {
                run_at: 88,
                error: "boom".into(),
            },
            "snoozed" => Outcome::Snoozed { run_at: 99 },
            "failed" => Outcome::Failed { error: "fatal".into() },
            _ => Outcome::Cancelled { reason: "stop".into() },
        };
        let commit = held(&job, 10, outcome.clone());
        let results = s.commit_batch(std::slice::from_ref(&commit)).await.unwrap();
        let finished = outcome.status().is_finished();
        assert!(
            matches!(results.as_slice(), [Ok(c)] if *c == Committed::new(!finished)),
            "{name}: {results:?}"
        );
        let after = s.get(job.id).await.unwrap().unwrap();
        let moved = outcome.change().is_some();
        assert_eq!(after.status, outcome.status(), "{name}");
        assert_eq!(after.version, 2, "{name}");
        assert_eq!(after.updated_at, 10, "{name}");
        assert_eq!(after.state, if moved { "next" } else { "start" }, "{name}");
        let payload = if moved {
            json!({ "next": true })
        } else {
            new.payload.clone()
        };
        assert_eq!(after.payload, payload, "{name}");
        assert_eq!(after.run_at, outcome.run_at().unwrap_or(job.run_at), "{name}");
        assert_eq!(after.attempts, outcome.attempts().apply(2), "{name}");
        assert_eq!(
            after.lease.as_ref().map(|l| (l.token, l.expires_at)),
            outcome
                .lease_until()
                .map(|until| (job.lease.as_ref().unwrap().token, until)),
            "{name}"
        );
        let last_error = outcome.error().unwrap_or("earlier");
        assert_eq!(after.last_error.as_deref(), Some(last_error), "{name}");
        assert_eq!(after.cancel_requested, !finished, "{name}");
        let mut copy = job.clone();
        copy.committed(commit, results.into_iter().next().unwrap().unwrap());
        copy.payload = after.payload.clone();
        assert_eq!(copy, after, "{name}: the caller's copy brought up to date");
        let entry = s.history(job.id).await.unwrap().pop().unwrap();
        assert_eq!(
            (entry.seq, entry.from.as_deref(), entry.to.as_str(), entry.status),
            (2, Some("start"), after.state.as_str(), after.status),
            "{name}"
        );
        assert_eq!(
            (entry.attempt, entry.at, entry.error.as_deref()),
            (2, 10, outcome.error()),
            "{name}"
        );
        assert_eq!(entry.payload, payload, "{name}");
        assert_eq!(entry.worker.as_deref(), Some("worker-1"), "{name}");
    }
}

/// An operator reopens a failed job: pending at the given time, attempts
/// reset, the reason recorded; a lease-less commit.
pub async fn a_failed_job_reopens(s: Arc<dyn Storage>) {
    s.insert(new_job("m", 1)).await.unwrap();
    let job = s.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let failed = s
        .commit(held(&job, 1, Outcome::Failed { error: "bug".into() }))
        .await
        .unwrap();
    let reason = "retry requested by admin".to_owned();
    let reopen = Commit::unleased(
        &failed,
        5,
        Some("admin".into()),
        Outcome::Reopened { run_at: 5, reason },
    );
    let after = s.commit(reopen).await.unwrap();
    assert_eq!((after.status, after.attempts, after.run_at), (JobState::Pending, 0, 5));
    assert_eq!(after.last_error.as_deref(), Some("retry requested by admin"));
    let entry = s.history(job.id).await.unwrap().pop().unwrap();
    assert_eq!(
        (entry.status, entry.attempt, entry.worker.as_deref()),
        (JobState::Pending, 1, Some("admin"))
    );
    assert_eq!(s.claim(claim_request(&["m"], 1, 5)).await.unwrap().len(), 1);
}

//! Inserts: single, batch, idempotency keys, payload fidelity.

use std::sync::Arc;

use serde_json::json;

use super::support::{claim_request, move_on, new_job};
use crate::{JobState, Storage, StorageError};

pub async fn insert_then_get(s: Arc<dyn Storage>) {
    let job = new_job("m", 1);
    let inserted = s.insert(job.clone()).await.unwrap();
    assert!(inserted.created);
    assert_eq!(inserted.id, job.id);
    let got = s.get(job.id).await.unwrap().expect("inserted job is readable");
    assert_eq!(got.status, JobState::Pending);
    assert_eq!((got.version, got.attempts), (0, 0));
    assert_eq!(got.state, "start");
    assert_eq!(got.payload, job.payload);
    assert_eq!(got.fingerprint, 7);
    assert!(got.lease.is_none());
    assert!(s.get(crate::JobId::new()).await.unwrap().is_none());
}

pub async fn duplicate_id_is_rejected(s: Arc<dyn Storage>) {
    let job = new_job("m", 1);
    s.insert(job.clone()).await.unwrap();
    let err = s.insert(job.clone()).await.unwrap_err();
    assert!(matches!(err, StorageError::DuplicateId(id) if id == job.id), "{err}");
}

pub async fn numbers_no_store_can_keep_are_refused(s: Arc<dyn Storage>) {
    let mut attempts = new_job("m", 1);
    attempts.max_attempts = crate::NewJob::MAX_ATTEMPTS + 1;
    let err = s.insert(attempts.clone()).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Invalid(message) if message.contains("max_attempts")),
        "{err}"
    );
    let mut timeout = new_job("m", 2);
    timeout.timeout_ms = Some(u64::MAX);
    let fine = new_job("m", 3);
    let err = s.insert_batch(vec![fine.clone(), timeout]).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Invalid(message) if message.contains("timeout_ms")),
        "{err}"
    );
    assert!(s.get(attempts.id).await.unwrap().is_none());
    assert!(
        s.get(fine.id).await.unwrap().is_none(),
        "a refused batch inserts nothing"
    );
    let mut largest = new_job("m", 4);
    largest.max_attempts = crate::NewJob::MAX_ATTEMPTS;
    largest.timeout_ms = Some(crate::NewJob::MAX_TIMEOUT_MS);
    s.insert(largest.clone()).await.unwrap();
    let got = s.get(largest.id).await.unwrap().expect("stored");
    assert_eq!(
        (got.max_attempts, got.timeout_ms),
        (largest.max_attempts, largest.timeout_ms)
    );
}

pub async fn idempotency_key_returns_the_first_job(s: Arc<dyn Storage>) {
    let mut first = new_job("m", 1);
    first.idempotency_key = Some("order-42".into());
    let mut second = new_job("m", 2);
    second.idempotency_key = Some("order-42".into());
    let a = s.insert(first.clone()).await.unwrap();
    let b = s.insert(second.clone()).await.unwrap();
    assert!(a.created && !b.created);
    assert_eq!(b.id, first.id);
    assert!(
        s.get(second.id).await.unwrap().is_none(),
        "the second job must not be stored"
    );
}

pub async fn batch_insert_is_atomic(s: Arc<dyn Storage>) {
    let existing = new_job("m", 0);
    s.insert(existing.clone()).await.unwrap();
    let fresh = new_job("m", 1);
    let err = s.insert_batch(vec![fresh.clone(), existing.clone()]).await.unwrap_err();
    assert!(
        matches!(err, StorageError::DuplicateId(id) if id == existing.id),
        "the error names the job whose id is taken: {err}"
    );
    assert!(
        s.get(fresh.id).await.unwrap().is_none(),
        "a failed batch inserts nothing"
    );
    let twice = new_job("m", 2);
    let err = s
        .insert_batch(vec![fresh.clone(), twice.clone(), twice.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::DuplicateId(id) if id == twice.id),
        "an id twice in one batch is a duplicate: {err}"
    );
    assert!(
        s.get(fresh.id).await.unwrap().is_none() && s.get(twice.id).await.unwrap().is_none(),
        "a batch with one id twice inserts nothing"
    );

    let jobs: Vec<_> = (0..500).map(|n| new_job("m", n)).collect();
    let inserted = s.insert_batch(jobs.clone()).await.unwrap();
    assert_eq!(inserted.len(), 500);
    for (job, ins) in jobs.iter().zip(&inserted) {
        assert_eq!(ins.id, job.id);
        assert!(ins.created);
    }
    assert_eq!(s.history(jobs[499].id).await.unwrap().len(), 1);
}

pub async fn batch_insert_honours_keys_within_the_batch(s: Arc<dyn Storage>) {
    let mut a = new_job("m", 1);
    a.idempotency_key = Some("k".into());
    let mut b = new_job("m", 2);
    b.idempotency_key = Some("k".into());
    let c = new_job("m", 3);
    let out = s.insert_batch(vec![a.clone(), b, c.clone()]).await.unwrap();
    assert_eq!(out[0].id, a.id);
    assert!(out[0].created);
    assert_eq!(out[1].id, a.id);
    assert!(!out[1].created);
    assert!(out[2].created && out[2].id == c.id);
}

pub async fn large_and_unicode_payloads_round_trip(s: Arc<dyn Storage>) {
    let mut job = new_job("m", 1);
    let big: String = "ᚱᚢᚾᛖ 🦀 \u{0}\"quoted\"\\".repeat(20_000);
    job.payload = json!({ "text": big, "nested": [1, {"ü": null}], "n": u64::MAX });
    job.state = "état-✓".into();
    job.machine = "machine/ü".into();
    s.insert(job.clone()).await.unwrap();
    let got = s.get(job.id).await.unwrap().unwrap();
    assert_eq!(got.payload, job.payload);
    assert_eq!(got.state, job.state);
    assert_eq!(got.machine, job.machine);
}

/// Who asked for a job is the worker of its submission entry, from a single
/// insert or a batch, and stays so once the job has moved on.
pub async fn a_submission_names_who_asked(s: Arc<dyn Storage>) {
    let mut asked = new_job("m", 1);
    asked.submitted_by = Some("admin:ops".into());
    let plain = new_job("m", 2);
    s.insert_batch(vec![asked.clone(), plain.clone()]).await.unwrap();
    let mut single = new_job("m", 3);
    single.submitted_by = Some("periodic:nightly".into());
    s.insert(single.clone()).await.unwrap();
    let submitter = |id| {
        let s = Arc::clone(&s);
        async move {
            let history = s.history(id).await.unwrap();
            history.first().expect("a submission entry").worker.clone()
        }
    };
    for (job, by) in [
        (&asked, Some("admin:ops")),
        (&plain, None),
        (&single, Some("periodic:nightly")),
    ] {
        assert_eq!(submitter(job.id).await.as_deref(), by, "job {}", job.id);
    }
    let claimed = s.claim(claim_request(&["m"], 3, 10)).await.unwrap();
    for job in &claimed {
        s.commit(move_on(job, 11, 60_000)).await.unwrap();
    }
    assert_eq!(claimed.len(), 3);
    assert_eq!(submitter(asked.id).await.as_deref(), Some("admin:ops"));
    assert_eq!(submitter(plain.id).await, None);
}

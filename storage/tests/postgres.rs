//! The Postgres backend against the conformance suite (each check in its own
//! schema), plus what only Postgres does: several stores on one database,
//! notifications across them, schema isolation.

use std::time::Duration;

use runekernel_storage::testing::postgres::{database_url, TestSchemas};
use runekernel_storage::testing::{self, new_job};
use runekernel_storage::{PostgresOptions, PostgresStorage, Storage, StorageEvent};

async fn connect(url: &str, schema: &str) -> PostgresStorage {
    PostgresStorage::connect_with(url, PostgresOptions::default().schema(schema))
        .await
        .expect("connect to the test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_conformance_suite() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    testing::conformance(|| {
        let schema = schemas.fresh("rk_conformance");
        let url = url.clone();
        async move { connect(&url, &schema).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_share_jobs_and_notifications() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let schema = schemas.fresh("rk_shared");
    let a = connect(&url, &schema).await;
    let b = connect(&url, &schema).await;
    let mut events = b.subscribe();
    let job = new_job("m", 1);
    a.insert(job.clone()).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(matches!(event, Ok(Ok(StorageEvent::JobsReady))), "{event:?}");
    assert_eq!(b.get(job.id).await.unwrap().unwrap().id, job.id);
}

#[tokio::test]
async fn schemas_isolate_applications() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let (one, two) = (schemas.fresh("rk_app_one"), schemas.fresh("rk_app_two"));
    let a = connect(&url, &one).await;
    let b = connect(&url, &two).await;
    let job = new_job("m", 1);
    a.insert(job.clone()).await.unwrap();
    assert!(b.get(job.id).await.unwrap().is_none());
    assert_eq!(a.schema(), one);
}

#[tokio::test]
async fn a_bad_schema_name_is_refused() {
    let Some(url) = database_url() else { return };
    let err = PostgresStorage::connect_with(&url, PostgresOptions::default().schema("Robert'); DROP"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not a usable schema name"), "{err}");
}

/// Commits race cancellations of the same running jobs: an optimistic write
/// must never overwrite a cancel request that landed after it read the row
/// (such rows go again under locks), and history stays gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_racing_cancellations_lose_nothing() {
    use runekernel_storage::testing::finish;
    use runekernel_storage::{CancelOutcome, ClaimRequest, JobState, StateChange};

    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let store = std::sync::Arc::new(connect(&url, &schemas.fresh("rk_race")).await);
    let jobs: Vec<_> = (0..200).map(|n| new_job("m", n)).collect();
    store.insert_batch(jobs).await.unwrap();
    let request = ClaimRequest {
        worker: "w".into(),
        machines: vec!["m".into()],
        limit: 200,
        now: 0,
        lease_ms: 30_000,
    };
    let claimed = store.claim(request).await.unwrap();
    assert_eq!(claimed.len(), 200);
    let steps: Vec<_> = claimed
        .iter()
        .map(|job| {
            let mut step = finish(job, 5);
            step.change = Some(StateChange {
                state: "next".into(),
                payload: serde_json::json!(1),
                fingerprint: 1,
            });
            step.status = JobState::Running;
            step.lease_until = Some(60_000);
            step
        })
        .collect();
    let cancels = {
        let store = store.clone();
        let ids: Vec<_> = claimed.iter().map(|j| j.id).collect();
        tokio::spawn(async move {
            let mut requested = Vec::new();
            for id in ids {
                if matches!(store.cancel(id, 6, None).await.unwrap(), CancelOutcome::Requested) {
                    requested.push(id);
                }
            }
            requested
        })
    };
    let mut results = Vec::new();
    for chunk in steps.chunks(10) {
        results.extend(store.commit_batch(chunk.to_vec()).await.unwrap());
    }
    let requested = cancels.await.unwrap();
    assert_eq!(requested.len(), 200, "every job was running when cancelled");
    for (job, result) in claimed.iter().zip(results) {
        let record = result.unwrap_or_else(|e| panic!("commit of {}: {e}", job.id));
        assert_eq!(record.version, 1);
        let stored = store.get(job.id).await.unwrap().unwrap();
        assert!(
            stored.cancel_requested,
            "the cancel request on {} was overwritten",
            job.id
        );
        assert_eq!(stored.state, "next");
        let seqs: Vec<u64> = store.history(job.id).await.unwrap().iter().map(|h| h.seq).collect();
        assert_eq!(seqs, vec![0, 1]);
    }
}

/// A store remembers the jobs it holds, to commit without reading them back;
/// what another process did to a job in between must still count.
#[tokio::test]
async fn a_commit_sees_what_another_process_did_to_the_job() {
    use runekernel_storage::testing::{claim_request, finish};
    use runekernel_storage::JobState;

    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let schema = schemas.fresh("rk_held");
    let (a, b) = (connect(&url, &schema).await, connect(&url, &schema).await);
    a.insert(new_job("m", 1)).await.unwrap();
    let job = a.claim(claim_request(&["m"], 1, 0)).await.unwrap().remove(0);
    let token = job.lease.as_ref().unwrap().token;
    assert_eq!(job.lease.as_ref().unwrap().expires_at, 30_000);
    // Another process extends the lease: `a` remembers the old expiry.
    b.heartbeat(job.id, token, 20_000, 30_000).await.unwrap();
    // At 40 000 the lease `a` remembers has run out, the stored one has not.
    let done = a.commit(finish(&job, 40_000)).await.unwrap();
    assert_eq!(done.status, JobState::Completed);
}

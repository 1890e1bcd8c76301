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
    use runekernel_storage::testing::move_on;
    use runekernel_storage::{CancelOutcome, ClaimRequest};

    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let store = std::sync::Arc::new(connect(&url, &schemas.fresh("rk_race")).await);
    let jobs: Vec<_> = (0..200).map(|n| new_job("m", n)).collect();
    store.insert_batch(jobs).await.unwrap();
    let request = ClaimRequest {
        worker: "w".into(),
        machines: vec!["m".into()],
        queue: runekernel_storage::DEFAULT_QUEUE.into(),
        limit: 200,
        now: 0,
        lease_ms: 30_000,
    };
    let claimed = store.claim(request).await.unwrap();
    assert_eq!(claimed.len(), 200);
    let steps: Vec<_> = claimed.iter().map(|job| move_on(job, 5, 60_000)).collect();
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
        results.extend(store.commit_batch(chunk).await.unwrap());
    }
    let requested = cancels.await.unwrap();
    assert_eq!(requested.len(), 200, "every job was running when cancelled");
    for (job, result) in claimed.iter().zip(results) {
        result.unwrap_or_else(|e| panic!("commit of {}: {e}", job.id));
        let stored = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(stored.version, 1);
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

/// What another process did to a job between a claim and a commit (a
/// heartbeat, a cancellation request) counts.
#[tokio::test]
async fn changes_by_another_process_count() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let schema = schemas.fresh("rk_shared_jobs");
    let (a, b) = (connect(&url, &schema).await, connect(&url, &schema).await);
    testing::changes_by_another_process_count(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
}

/// A commit that the database refuses (here a state name with a NUL
/// character, which a `text` column cannot hold) fails alone: the other
/// commits of its batch are written.
#[tokio::test]
async fn a_refused_commit_fails_alone_in_its_batch() {
    use runekernel_storage::testing::{claim_request, finish, held};
    use runekernel_storage::{JobState, Outcome, StateChange};

    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let store = connect(&url, &schemas.fresh("rk_refused")).await;
    for n in 0..3 {
        store.insert(new_job("m", n)).await.unwrap();
    }
    let claimed = store.claim(claim_request(&["m"], 3, 0)).await.unwrap();
    let mut commits: Vec<_> = claimed.iter().map(|j| finish(j, 1)).collect();
    let to = StateChange {
        state: "do\0ne".to_owned(),
        payload: serde_json::Value::Null,
        fingerprint: 0,
    };
    commits[1] = held(&claimed[1], 1, Outcome::Completed { to });
    let results = store.commit_batch(&commits).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "{results:?}");
    let statuses: Vec<_> = futures::future::join_all(claimed.iter().map(|j| store.get(j.id)))
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().status)
        .collect();
    assert_eq!(statuses, [JobState::Completed, JobState::Running, JobState::Completed]);
}

/// A job inserted on a connection of the application's own pool, inside its
/// transaction, exists once that transaction commits, and runtimes are told
/// then; a rolled-back one never exists. The application's connections keep
/// their own `search_path`.
#[tokio::test]
async fn a_job_inserted_in_the_applications_transaction_exists_if_it_commits() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let schema = schemas.fresh("rk_app_tx");
    let app = sqlx_postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let storage = PostgresStorage::from_pool(&app, PostgresOptions::default().schema(&schema))
        .await
        .unwrap();
    let mut events = storage.subscribe_ready();

    let mut tx = app.begin().await.unwrap();
    let job = new_job("m", 1);
    let mut keyed = new_job("m", 2);
    keyed.idempotency_key = Some("order-7".into());
    let mut again = new_job("m", 3);
    again.idempotency_key = Some("order-7".into());
    let inserted = storage
        .insert_in(&mut tx, vec![job.clone(), keyed.clone()])
        .await
        .unwrap();
    assert!(inserted.iter().all(|i| i.created));
    let repeated = storage.insert_in(&mut tx, vec![again]).await.unwrap();
    assert_eq!(
        (repeated[0].id, repeated[0].created),
        (keyed.id, false),
        "the key is seen within the transaction"
    );
    assert!(
        storage.get(job.id).await.unwrap().is_none(),
        "not visible before the commit"
    );
    let path: String = sqlx_core::query_scalar::query_scalar("SHOW search_path")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(
        !path.contains(&schema),
        "the application's search_path is its own: {path}"
    );
    tx.commit().await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(matches!(event, Ok(Ok(StorageEvent::JobsReady))), "{event:?}");
    assert_eq!(storage.get(job.id).await.unwrap().unwrap().state, "start");
    assert_eq!(storage.history(keyed.id).await.unwrap().len(), 1);

    let mut tx = app.begin().await.unwrap();
    let dropped = new_job("m", 4);
    storage.insert_in(&mut tx, vec![dropped.clone()]).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(
        storage.get(dropped.id).await.unwrap().is_none(),
        "rolled back with the transaction"
    );
    assert!(storage.history(dropped.id).await.unwrap().is_empty());
}

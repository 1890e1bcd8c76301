//! The SQLite backend against the conformance suite, on a file and in memory,
//! plus what only a file can show: durability across reopening.

use runekernel_storage::testing::{self, new_job};
use runekernel_storage::{SqliteStorage, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    testing::conformance(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("conformance-{n}.db"));
        async move { SqliteStorage::open(path).unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_passes_the_conformance_suite() {
    testing::conformance(|| async { SqliteStorage::open_in_memory().unwrap() }).await;
}

#[tokio::test]
async fn changes_by_another_process_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let (a, b) = (SqliteStorage::open(&path).unwrap(), SqliteStorage::open(&path).unwrap());
    testing::changes_by_another_process_count(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
}

#[tokio::test]
async fn jobs_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let job = new_job("m", 1);
    {
        let storage = SqliteStorage::open(&path).unwrap();
        storage.insert(job.clone()).await.unwrap();
    }
    let storage = SqliteStorage::open(&path).unwrap();
    let record = storage.get(job.id).await.unwrap().expect("the job is still there");
    assert_eq!(record.payload, job.payload);
    assert_eq!(storage.history(job.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStorage::open(&path)
        .err()
        .expect("a newer schema must be refused");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[tokio::test]
async fn a_corrupt_row_fails_that_job_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let storage = SqliteStorage::open(&path).unwrap();
    let bad = new_job("m", 1);
    let good = new_job("m", 2);
    storage.insert(bad.clone()).await.unwrap();
    storage.insert(good.clone()).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE rk_jobs SET payload = '{not json' WHERE id = ?1",
        [bad.id.as_u128().to_be_bytes()],
    )
    .unwrap();
    drop(conn);
    let err = storage.get(bad.id).await.unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    let claimed = storage
        .claim(runekernel_storage::ClaimRequest {
            worker: "w".into(),
            machines: vec!["m".into()],
            queue: runekernel_storage::DEFAULT_QUEUE.into(),
            limit: 10,
            now: 0,
            lease_ms: 1_000,
        })
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![good.id]);
    let history = storage.history(bad.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!((last.seq, last.status), (1, runekernel_storage::JobState::Failed));
    assert!(last.error.as_deref().unwrap_or("").contains("not valid JSON"));
}

/// A database written by the first release (schema version 1), with a
/// pending job holding an idempotency key, a finished job with its history,
/// and a running job whose lease has expired.
fn version_1_database(path: &std::path::Path) -> [runekernel_storage::JobId; 3] {
    use runekernel_storage::JobId;
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(include_str!("../src/sqlite/migrations/0001_jobs.sql"))
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    let ids = [JobId::new(), JobId::new(), JobId::new()];
    let rows = [
        (ids[0], "pending", Some("key-a"), None, 0),
        (ids[1], "completed", None, None, 2),
        (ids[2], "running", None, Some(10_i64), 1),
    ];
    for (id, status, key, lease_expires_at, version) in rows {
        let id = id.as_u128().to_be_bytes();
        conn.execute(
            "INSERT INTO rk_jobs (id, machine, fingerprint, state, payload, status, priority, run_at, attempts, \
             max_attempts, lease_owner, lease_token, lease_expires_at, version, idempotency_key, created_at, updated_at) \
             VALUES (?1, 'm', 7, 'start', '{\"n\":1}', ?2, 0, 0, 0, 3, ?3, ?4, ?3, ?5, ?6, 0, 5)",
            rusqlite::params![
                id,
                status,
                lease_expires_at,
                lease_expires_at.map(|_| 1_i64),
                version,
                key
            ],
        )
        .unwrap();
        for seq in 0..=version {
            conn.execute(
                "INSERT INTO rk_history (job_id, seq, to_state, status, at, attempt, payload) \
                 VALUES (?1, ?2, 'start', 'pending', 0, 0, '{\"n\":1}')",
                rusqlite::params![id, seq],
            )
            .unwrap();
        }
    }
    ids
}

#[tokio::test]
async fn a_version_1_database_is_migrated_with_every_job_and_its_history() {
    use runekernel_storage::JobState;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let [pending, completed, running] = version_1_database(&path);

    let storage = SqliteStorage::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, 5, "migrated to the latest version");
    for (id, status, entries) in [
        (pending, JobState::Pending, 1),
        (completed, JobState::Completed, 3),
        (running, JobState::Running, 2),
    ] {
        let job = storage.get(id).await.unwrap().expect("the job survived the migration");
        assert_eq!((job.status, job.payload), (status, serde_json::json!({ "n": 1 })));
        assert_eq!(
            job.queue,
            runekernel_storage::DEFAULT_QUEUE,
            "a job from before queues is in the default one"
        );
        assert_eq!(storage.history(id).await.unwrap().len(), entries);
    }
    // The idempotency key still finds its job.
    let mut again = new_job("m", 2);
    again.idempotency_key = Some("key-a".into());
    assert_eq!(storage.insert(again).await.unwrap().id, pending);
    // The claim indexes were rebuilt: they find the ready job and the expired
    // lease (in id order, as both have the same priority and run_at).
    let request = testing::claim_request(&["m"], 10, 100);
    let claimed: Vec<_> = storage.claim(request).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(claimed, vec![pending, running]);
    // So was the finished-jobs index that pruning reads.
    assert_eq!(storage.prune(6).await.unwrap(), 1);
    assert!(storage.get(completed).await.unwrap().is_none());
    assert!(storage.history(completed).await.unwrap().is_empty());
}

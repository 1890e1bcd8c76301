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

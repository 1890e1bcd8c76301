//! Crash recovery across processes: worker processes are killed with SIGKILL
//! mid-run and restarted. Every job must complete, every transition must be
//! committed exactly once, and every history must replay.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runekernel::prelude::*;
use runekernel::storage::{JobFilter, SqliteStorage, Storage};
use runekernel_tests::machines::{Pipeline, PipelineWorker};

const JOBS: u64 = 150;

fn worker(storage: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rk-worker"))
        .arg(storage)
        .args(args)
        .env("STEP_MS", "15")
        .spawn()
        .expect("start rk-worker")
}

fn finish(mut child: Child, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "rk-worker failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rk-worker did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL (`Child::kill` sends it on Unix), then reap.
fn kill(mut child: Child) {
    child.kill().expect("kill rk-worker");
    child.wait().expect("reap rk-worker");
}

/// Every job completed, with exactly the three transitions, and replays.
async fn check_every_job(storage: Arc<dyn Storage>) {
    let rt = Runtime::builder()
        .deterministic(0)
        .shared_storage(storage.clone())
        .register(Pipeline::handler(PipelineWorker { step_ms: 0 }))
        .build()
        .await
        .unwrap();
    let page = rt.list(&JobFilter::default(), None, 10_000).await.unwrap();
    assert_eq!(page.jobs.len() as u64, JOBS);
    for job in page.jobs {
        assert_eq!(job.status, JobState::Completed, "job {} is {}", job.id, job.status);
        let history = rt.history(job.id).await.unwrap();
        let path: Vec<&str> = history.iter().map(|h| h.to.as_str()).collect();
        assert_eq!(
            path,
            ["Received", "Parsed", "Stored", "Done"],
            "job {}: each transition exactly once",
            job.id
        );
        rt.verify(job.id).await.unwrap();
        let view = rt.get::<Pipeline>(job.id).await.unwrap().unwrap();
        assert!(matches!(view.state, Pipeline::Done { .. }));
    }
}

/// Kills a worker on `spec` three times mid-run, then lets one finish.
/// `open` opens the store from this process between runs.
async fn killed_repeatedly(spec: &str, open: impl Fn() -> Arc<dyn Storage>) {
    finish(worker(spec, &["submit", &JOBS.to_string()]), Duration::from_secs(30));
    let mut orphaned = 0;
    for pause in [300, 500, 400] {
        let child = worker(spec, &["work"]);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        kill(child);
        // The kill left jobs running under a dead worker's lease, to be
        // reclaimed once it expires.
        let counts = open().counts().await.unwrap();
        orphaned += counts
            .iter()
            .filter(|r| r.status == JobState::Running)
            .map(|r| r.count)
            .sum::<u64>();
    }
    assert!(orphaned > 0, "the kills must interrupt running steps");
    finish(worker(spec, &["work"]), Duration::from_secs(60));
    check_every_job(open()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_killed_repeatedly_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    killed_repeatedly(&format!("sqlite:{}", path.display()), || {
        Arc::new(SqliteStorage::open(&path).unwrap())
    })
    .await;
}

/// RocksDB admits one process at a time: the test opens the store only
/// while no worker runs, and drops it before the next worker starts.
#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_worker_killed_repeatedly_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash-rocks");
    killed_repeatedly(&format!("rocksdb:{}", path.display()), || {
        Arc::new(runekernel::storage::RocksDbStorage::open(&path).unwrap())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_workers_one_killed_lose_nothing() {
    use runekernel::storage::testing::postgres::{database_url, TestSchemas};
    use runekernel::storage::{PostgresOptions, PostgresStorage};
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let schema = schemas.fresh("rk_crash");
    let spec = format!("postgres:{url}#{schema}");
    finish(worker(&spec, &["submit", &JOBS.to_string()]), Duration::from_secs(30));
    let survivor = worker(&spec, &["work"]);
    let victim = worker(&spec, &["work"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    kill(victim);
    finish(survivor, Duration::from_secs(60));
    let storage = PostgresStorage::connect_with(&url, PostgresOptions::default().schema(schema))
        .await
        .unwrap();
    check_every_job(Arc::new(storage)).await;
}

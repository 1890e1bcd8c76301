//! Periodic jobs: one job per tick however many runtimes share a storage,
//! the latest missed tick (or each, with a catch-up window) after downtime,
//! on the manual clock of deterministic mode and in the background.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use runekernel::storage::{InMemoryStorage, Storage};
use runekernel::{JobFilter, JobRecord, JobState, Runtime, Schedule};
use runekernel_tests::machines::{Calls, Scripted, Task};

const MINUTE: Duration = Duration::from_secs(60);

/// A deterministic runtime named `name` on `storage` that submits a `Task`
/// at every tick of `schedule`.
async fn runtime(storage: &Arc<dyn Storage>, name: &str, schedule: Schedule) -> Runtime {
    Runtime::builder()
        .deterministic(3)
        .worker_id(name)
        .shared_storage(Arc::clone(storage))
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .periodic("report", schedule, || Task::Todo { mode: "ok".into() })
        .build()
        .await
        .unwrap()
}

async fn jobs(storage: &Arc<dyn Storage>) -> Vec<JobRecord> {
    storage.list(&JobFilter::default(), None, 10_000).await.unwrap().jobs
}

/// The ticks the jobs were submitted for (their `run_at`), each once.
async fn ticks(storage: &Arc<dyn Storage>) -> Vec<i64> {
    let jobs = jobs(storage).await;
    let ticks: BTreeSet<i64> = jobs.iter().map(|j| j.run_at).collect();
    assert_eq!(ticks.len(), jobs.len(), "one job per tick");
    ticks.into_iter().collect()
}

#[tokio::test]
async fn two_runtimes_submit_one_job_per_tick() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let every_minute = || Schedule::cron("0 * * * * *").unwrap();
    let (a, b) = (
        runtime(&storage, "a", every_minute()).await,
        runtime(&storage, "b", every_minute()).await,
    );
    // Both start at once: the latest tick, once.
    a.submit_periodic().await.unwrap();
    b.submit_periodic().await.unwrap();
    let first = ticks(&storage).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0] % 60_000, 0, "a tick on the minute");
    for _ in 0..3 {
        a.advance(MINUTE).await;
        b.advance(MINUTE).await;
        b.run_until_idle().await.unwrap();
        a.run_until_idle().await.unwrap();
    }
    let all = ticks(&storage).await;
    assert_eq!(all, (0..4).map(|i| first[0] + i * 60_000).collect::<Vec<_>>());
    assert!(jobs(&storage).await.iter().all(|j| j.status == JobState::Completed));
    let record = &jobs(&storage).await[0];
    assert!(record
        .idempotency_key
        .as_deref()
        .is_some_and(|k| k.starts_with("periodic:report:")));
    let history = storage.history(record.id).await.unwrap();
    assert_eq!(
        history[0].worker.as_deref(),
        Some("periodic:report"),
        "the schedule submitted it"
    );
}

#[tokio::test]
async fn after_downtime_only_the_latest_missed_tick_runs() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let a = runtime(&storage, "a", Schedule::every(MINUTE).unwrap()).await;
    a.run_until_idle().await.unwrap();
    let first = ticks(&storage).await[0];
    // Ten minutes pass without a look (the process was frozen or down).
    a.advance(10 * MINUTE).await;
    a.run_until_idle().await.unwrap();
    assert_eq!(ticks(&storage).await, [first, first + 10 * 60_000]);
    // A runtime that starts now finds the latest tick submitted already.
    let b = runtime(&storage, "b", Schedule::every(MINUTE).unwrap()).await;
    b.advance(10 * MINUTE).await;
    b.run_until_idle().await.unwrap();
    assert_eq!(ticks(&storage).await.len(), 2);
}

#[tokio::test]
async fn a_catch_up_window_runs_each_missed_tick() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let schedule = Schedule::every(MINUTE).unwrap().catch_up(5 * MINUTE);
    let a = runtime(&storage, "a", schedule).await;
    a.run_until_idle().await.unwrap();
    let started = ticks(&storage).await;
    assert_eq!(
        started.len(),
        6,
        "as it starts: each tick of the window, its start included"
    );
    let last = started[5];
    a.advance(10 * MINUTE).await;
    a.run_until_idle().await.unwrap();
    let now: Vec<i64> = ticks(&storage).await.into_iter().filter(|t| *t > last).collect();
    assert_eq!(
        now,
        (5..=10).map(|i| last + i * 60_000).collect::<Vec<_>>(),
        "the window's ticks, not older"
    );
}

#[tokio::test]
async fn runtimes_with_workers_submit_each_tick_once_in_the_background() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let start = |name: &'static str| {
        Runtime::builder()
            .worker_id(name)
            .shared_storage(Arc::clone(&storage))
            .register(Task::handler(Scripted))
            .resource(Calls::default())
            .periodic("tick", Schedule::every(Duration::from_millis(50)).unwrap(), || {
                Task::Todo { mode: "ok".into() }
            })
            .build()
    };
    let (a, b) = (start("a").await.unwrap(), start("b").await.unwrap());
    let since = UNIX_EPOCH.elapsed().unwrap().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let ticks = ticks(&storage).await;
    assert!(ticks.len() >= 4, "{ticks:?}");
    assert!(ticks.iter().all(|t| t % 50 == 0), "{ticks:?}");
    assert!(ticks[0] <= since, "the latest tick as they started: {ticks:?}");
}

//! `Policies::prefetch`, on every backend: a runtime claims jobs ahead of
//! its free workers, runs no more steps at once than it has workers, hands
//! the waiting jobs back at shutdown, and keeps a waiting job's lease for as
//! long as it waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use runekernel::prelude::*;
use runekernel::{Policies, RuntimeBuilder};
use runekernel_tests::backends::TestStorage;
use runekernel_tests::machines::{Calls, Scripted, Task};
use runekernel_tests::on_every_backend;

on_every_backend![
    a_runtime_claims_ahead_but_runs_no_more_steps_than_workers,
    jobs_waiting_for_a_worker_are_handed_back_at_shutdown,
    a_job_waiting_for_a_worker_keeps_its_lease_and_runs_once,
];

/// Submits `modes` as `Task`s from a runtime without workers, so a runtime
/// built afterwards finds them all in its first claim.
async fn submit(storage: &TestStorage, modes: &[&str]) -> Vec<JobId> {
    let submitter = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Task::handler(Scripted))
        .workers(0)
        .build()
        .await
        .unwrap();
    let ids = submitter
        .submit_many(modes.iter().map(|mode| Task::Todo { mode: (*mode).into() }))
        .await
        .unwrap();
    submitter.shutdown().await.unwrap();
    ids
}

/// A runtime builder over `storage` with `workers` workers that claims up
/// to `prefetch` jobs ahead of them, under `policies` otherwise.
fn claiming_ahead(storage: &TestStorage, workers: usize, prefetch: usize, mut policies: Policies) -> RuntimeBuilder {
    policies.prefetch = prefetch;
    Runtime::builder()
        .shared_storage(storage.storage.clone())
        .workers(workers)
        .policies(policies)
}

/// How many jobs of `Task` storage holds in `status`.
async fn count(rt: &Runtime, status: JobState) -> u64 {
    rt.counts()
        .await
        .unwrap()
        .iter()
        .filter(|row| row.machine == Task::NAME && row.status == status)
        .map(|row| row.count)
        .sum()
}

/// Polls until storage holds `n` jobs of `Task` in `status`; panics after
/// five seconds.
async fn wait_for(rt: &Runtime, status: JobState, n: u64) {
    for _ in 0..1000 {
        if count(rt, status).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("storage never held {n} {status:?} jobs");
}

async fn a_runtime_claims_ahead_but_runs_no_more_steps_than_workers(storage: TestStorage) {
    const JOBS: usize = 12;
    let ids = submit(&storage, &["ok"; JOBS]).await;
    // Every step waits at the gate until the test opens it.
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (wait, now, peak) = (Arc::clone(&gate), Arc::clone(&running), Arc::clone(&most));
    let handler = runekernel::Handler::new(move |_: Task, ctx: JobContext| {
        let (wait, now, peak) = (Arc::clone(&wait), Arc::clone(&now), Arc::clone(&peak));
        async move {
            peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            wait.acquire()
                .await
                .map_err(|e| StepError::fatal(e.to_string()))?
                .forget();
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(Task::Done {
                attempt: ctx.attempt(),
                calls: 1,
            })
        }
    });
    let rt = claiming_ahead(&storage, 2, 3, Policies::default())
        .register(handler)
        .build()
        .await
        .unwrap();
    // Two steps run and three jobs wait for them; nothing more is claimed.
    wait_for(&rt, JobState::Running, 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&rt, JobState::Running).await, 5);
    assert_eq!(running.load(Ordering::SeqCst), 2);
    gate.add_permits(JOBS);
    wait_for(&rt, JobState::Completed, JOBS as u64).await;
    assert_eq!(most.load(Ordering::SeqCst), 2, "never more steps at once than workers");
    for id in ids {
        rt.verify(id).await.unwrap();
    }
    rt.shutdown().await.unwrap();
}

async fn jobs_waiting_for_a_worker_are_handed_back_at_shutdown(storage: TestStorage) {
    let ids = submit(&storage, &["sleep-300", "ok", "ok"]).await;
    let calls = Calls::default();
    let rt = claiming_ahead(&storage, 1, 2, Policies::default())
        .register(Task::handler(Scripted))
        .resource(calls.clone())
        .build()
        .await
        .unwrap();
    // The first job runs (its step has started); the other two were claimed
    // with it and wait.
    wait_for(&rt, JobState::Running, 3).await;
    while calls.order().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(calls.order(), [ids[0]]);
    rt.shutdown().await.unwrap();
    let first = rt.get_record(ids[0]).await.unwrap().unwrap();
    assert_eq!(first.status, JobState::Completed, "the running step finished");
    for id in &ids[1..] {
        let record = rt.get_record(*id).await.unwrap().unwrap();
        assert_eq!(
            (record.status, record.attempts, record.version),
            (JobState::Pending, 0, 0),
            "a job that never started goes back as it was"
        );
        assert!(record.lease.is_none());
    }
}

async fn a_job_waiting_for_a_worker_keeps_its_lease_and_runs_once(storage: TestStorage) {
    let ids = submit(&storage, &["sleep-900", "ok"]).await;
    let calls = Calls::default();
    // One worker and one job ahead: the second job waits 900 ms, three
    // times its lease, which the heartbeat keeps extending.
    let first = claiming_ahead(&storage, 1, 1, {
        let mut policies = Policies::default();
        policies.lease = Duration::from_millis(300);
        policies.heartbeat = Duration::from_millis(100);
        policies
    })
    .register(Task::handler(Scripted))
    .resource(calls.clone())
    .build()
    .await
    .unwrap();
    wait_for(&first, JobState::Running, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another runtime finds nothing to take over: the lease still holds.
    let second = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Task::handler(Scripted))
        .resource(calls.clone())
        .build()
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(20), first.wait::<Task>(ids[1]))
        .await
        .expect("the job that waited runs")
        .unwrap();
    assert_eq!(
        done.state,
        Task::Done { attempt: 1, calls: 1 },
        "it ran once, at its first attempt"
    );
    assert_eq!(calls.order().iter().filter(|id| **id == ids[1]).count(), 1);
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    first.verify(ids[1]).await.unwrap();
}

//! Retention: finished jobs are pruned once their state's retention has
//! passed, by one runtime at a time of those sharing a storage, on the
//! manual clock of deterministic mode.

use std::sync::Arc;
use std::time::Duration;

use runekernel::job::Job;
use runekernel::storage::{InMemoryStorage, Storage};
use runekernel::{JobId, JobState, Policies, Runtime};

const HOUR: Duration = Duration::from_secs(3600);

/// A deterministic runtime named `name` on `storage`, pruning in batches
/// of two every minute.
async fn runtime(storage: &Arc<dyn Storage>, name: &str) -> Runtime {
    let mut policies = Policies::default();
    policies.retention.batch = 2;
    policies.retention.interval = Duration::from_secs(60);
    Runtime::builder()
        .deterministic(7)
        .worker_id(name)
        .shared_storage(Arc::clone(storage))
        .policies(policies)
        .build()
        .await
        .unwrap()
}

async fn advance(runtimes: &[&Runtime], by: Duration) {
    for rt in runtimes {
        rt.advance(by).await;
    }
}

async fn exists(rt: &Runtime, id: JobId) -> bool {
    rt.get_record(id).await.unwrap().is_some()
}

#[tokio::test]
async fn one_runtime_prunes_at_a_time_and_another_takes_over_when_it_stops() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let (a, b) = (runtime(&storage, "a").await, runtime(&storage, "b").await);
    let mut completed = Vec::new();
    for _ in 0..3 {
        completed.push(a.submit_job(Job::new()).await.unwrap());
    }
    a.run_until_idle().await.unwrap();
    let cancelled = a.submit_job(Job::new()).await.unwrap();
    a.cancel(cancelled).await.unwrap();
    let pending = a.submit_job(Job::new()).await.unwrap();
    // Nothing is old enough yet; `a` takes the duty, and `b` may not prune
    // while `a` holds it.
    assert_eq!(a.prune_finished().await.unwrap(), Some(0));
    assert_eq!(b.prune_finished().await.unwrap(), None);
    advance(&[&a, &b], 25 * HOUR).await;
    // `a`'s hold ran out meanwhile; it takes the duty again and deletes the
    // three completed jobs, two per batch, and keeps the cancelled one (7
    // days).
    assert_eq!(a.prune_finished().await.unwrap(), Some(3));
    assert_eq!(b.prune_finished().await.unwrap(), None);
    for id in &completed {
        assert!(!exists(&a, *id).await);
        assert!(a.history(*id).await.unwrap().is_empty());
    }
    assert!(exists(&a, cancelled).await && exists(&a, pending).await);
    // `a` stops renewing the duty: once its hold (three intervals) has
    // run out, `b` takes it, and `a` no longer may.
    advance(&[&a, &b], Duration::from_secs(179)).await;
    assert_eq!(
        b.prune_finished().await.unwrap(),
        None,
        "a's hold runs for three intervals"
    );
    advance(&[&a, &b], Duration::from_secs(1)).await;
    assert_eq!(b.prune_finished().await.unwrap(), Some(0));
    assert_eq!(a.prune_finished().await.unwrap(), None);
    advance(&[&a, &b], 7 * 24 * HOUR).await;
    assert_eq!(b.prune_finished().await.unwrap(), Some(1));
    assert!(!exists(&b, cancelled).await);
    let record = b.get_record(pending).await.unwrap().unwrap();
    assert_eq!(record.status, JobState::Pending, "an unfinished job is never pruned");
}

#[tokio::test]
async fn a_runtime_that_keeps_everything_prunes_nothing() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let mut policies = Policies::default();
    policies.retention = runekernel::Retention::keep_everything();
    let rt = Runtime::builder()
        .deterministic(7)
        .shared_storage(storage)
        .policies(policies)
        .build()
        .await
        .unwrap();
    let id = rt.submit_job(Job::new()).await.unwrap();
    rt.run_until_idle().await.unwrap();
    rt.advance(365 * 24 * HOUR).await;
    assert_eq!(rt.prune_finished().await.unwrap(), Some(0));
    assert!(exists(&rt, id).await);
}

#[tokio::test]
async fn a_runtime_with_workers_prunes_in_the_background() {
    let mut policies = Policies::default();
    policies.retention.completed = Some(Duration::ZERO);
    policies.retention.interval = Duration::from_millis(20);
    let rt = Runtime::builder().policies(policies).build().await.unwrap();
    let id = rt.submit_job(Job::new()).await.unwrap();
    for _ in 0..500 {
        if !exists(&rt, id).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!exists(&rt, id).await, "the completed job was pruned");
    rt.shutdown().await.unwrap();
}

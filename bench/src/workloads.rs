//! RuneKernel's side of each workload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runekernel::prelude::*;
use runekernel::storage::{InMemoryStorage, JobId, NewJob, Storage};
use runekernel::Policies;

use crate::machines::{Counter, Noop, Three};

/// Workers (concurrent steps) for the burn-downs.
pub const WORKERS: usize = 64;

/// Postgres connections each side's pool keeps open from the start, so a
/// 10k-job run measures work rather than connection set-up.
pub const WARM_CONNECTIONS: u32 = 8;

/// Jobs claimed per query ([`Policies::claim_batch`]), as apalis fetches.
pub const CLAIM_BATCH: usize = 256;

fn policies() -> Policies {
    let mut policies = Policies::default();
    policies.claim_batch = CLAIM_BATCH;
    // Up to one claim batch in hand, running or waiting for a worker, as
    // apalis holds the rest of a fetched batch while its workers are busy.
    policies.prefetch = CLAIM_BATCH - WORKERS;
    policies
}

/// Inserts `n` pending jobs straight into storage, in batches of 1000.
pub async fn preload(storage: &Arc<dyn Storage>, machine: &str, state: &str, n: u64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let jobs = chunk
            .iter()
            .map(|&i| {
                // The fingerprint stays 0: it is informational only, the
                // runtime decodes by state name.
                let mut job = NewJob::new(JobId::new(), machine, state, serde_json::json!({ "n": i }));
                job.max_attempts = 5;
                job
            })
            .collect();
        storage.insert_batch(jobs).await.expect("preload jobs");
    }
}

/// Runs `n` pre-inserted jobs to completion; returns jobs per second.
pub async fn burn_down(storage: Arc<dyn Storage>, n: u64, three_steps: bool) -> f64 {
    let (machine, state) = if three_steps { ("three", "A") } else { ("noop", "Start") };
    preload(&storage, machine, state, n).await;
    let counter = Counter::default();
    let builder = Runtime::builder()
        .shared_storage(storage.clone())
        .workers(WORKERS)
        .policies(policies());
    let builder = if three_steps {
        builder.register(Three::handler(counter.clone()))
    } else {
        builder.register(Noop::handler(counter.clone()))
    };
    let started = Instant::now();
    let rt = builder.build().await.expect("build the runtime");
    // No budget, unlike apalis's SQLite runs: RuneKernel's always finish.
    let unbounded = tokio::time::Instant::from_std(started) + Duration::from_secs(24 * 3600);
    counter.reached(n, unbounded).await;
    // The last handlers have returned; wait for their commits.
    let machine = machine.to_owned();
    loop {
        let done: u64 = storage
            .counts()
            .await
            .expect("counts")
            .iter()
            .filter(|r| r.machine == machine && r.status == JobState::Completed)
            .map(|r| r.count)
            .sum();
        if done >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    stop(rt, storage).await;
    n as f64 / elapsed.as_secs_f64()
}

/// Submits `n` jobs with `submit_many`, 1000 at a time; returns jobs per second.
pub async fn bulk_submit(storage: Arc<dyn Storage>, n: u64) -> f64 {
    let rt = Runtime::builder()
        .shared_storage(Arc::clone(&storage))
        .register(Noop::handler(Counter::default()))
        .workers(0) // a submitter: only the submission is measured
        .build()
        .await
        .expect("build the runtime");
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch = (i..(i + 1000).min(n)).map(|n| Noop::Start { n });
        rt.submit_many(batch).await.expect("submit");
        i += 1000;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    stop(rt, storage).await;
    rate
}

/// Submit-to-start latency on an idle runtime: `samples` single jobs, each
/// submitted once the previous one started. Returns (p50, p99) in ms.
pub async fn latency(storage: Arc<dyn Storage>, samples: usize) -> (f64, f64) {
    let counter = Counter::default();
    let rt = Runtime::builder()
        .shared_storage(Arc::clone(&storage))
        .register(Noop::handler(counter.clone()))
        .workers(4)
        .build()
        .await
        .expect("build the runtime");
    // Let the workers start and go idle, as the apalis side does.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples as u64 {
        let before = counter.get();
        let started = Instant::now();
        rt.submit(Noop::Start { n: i }).await.expect("submit");
        let ran = counter
            .ran_after(before, Duration::from_secs(30))
            .await
            .expect("a job started within 30 s");
        latencies.push(ran.duration_since(started).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop(rt, storage).await;
    percentiles(latencies)
}

/// Shuts a workload's runtime down and drops its storage here, once the
/// runtime's last background task has let go of it, so that freeing a large
/// store does not run on a worker thread while the next workload is being
/// measured.
async fn stop(rt: Runtime, storage: Arc<dyn Storage>) {
    rt.shutdown().await.expect("shutdown");
    drop(rt);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&storage) > 1 {
        if Instant::now() >= deadline {
            eprintln!("note: the runtime still held its storage 10 s after shutdown");
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(storage);
}

/// The p50 and p99 of `samples` (0 for none).
pub fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let last = samples.len().saturating_sub(1);
        samples
            .get(((samples.len() as f64 * q) as usize).min(last))
            .copied()
            .unwrap_or(0.0)
    };
    (pick(0.50), pick(0.99))
}

/// Resident memory of this process, in bytes.
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Bytes of resident memory per pending job in `InMemoryStorage`.
pub async fn memory_per_job(n: u64) -> f64 {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let before = rss();
    preload(&storage, "noop", "Start", n).await;
    let after = rss();
    let per_job = (after.saturating_sub(before)) as f64 / n as f64;
    drop(storage);
    per_job
}

//! A retry storm: many jobs whose first step fails twice before it
//! succeeds, with urgent jobs submitted while the storm runs. Backoff must
//! spread the retries, and the urgent jobs (a higher priority) must not
//! wait behind them.

use std::time::{Duration, Instant};

use runekernel::prelude::*;
use runekernel::{Backoff, SubmitOptions};

use crate::machine::{Chaos, Steps};
use crate::{store, Error};

/// What a storm measured.
#[derive(Debug, Clone)]
pub struct Storm {
    /// Jobs in the storm.
    pub jobs: u64,
    /// Retries the runtime counted.
    pub retries: u64,
    /// Jobs that did not complete.
    pub unfinished: u64,
    /// From the first submit until every job finished.
    pub drained: Duration,
    /// Urgent jobs submitted during the storm.
    pub urgent: usize,
    /// Their median time from submit to completed.
    pub urgent_p50: Duration,
    /// Their slowest.
    pub urgent_max: Duration,
}

/// Runs a storm of `jobs` jobs, each failing twice, with `urgent` jobs of
/// higher priority submitted 20 ms apart meanwhile, on the store `spec`.
pub async fn retry_storm(spec: &str, jobs: u64, urgent: usize) -> Result<Storm, Error> {
    let rt = Runtime::builder()
        .shared_storage(store::open(spec).await?)
        .register(Chaos::handler(Steps {
            step: Duration::ZERO,
            runs: None,
        }))
        .workers(16)
        .backoff(Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            jitter: 0.5,
        })
        .build()
        .await?;
    let started = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
        rt.submit_many(chunk.iter().map(|&n| Chaos::Start { n, fail_first: 2 }))
            .await?;
    }
    let mut waits = Vec::with_capacity(urgent);
    for n in 0..urgent {
        let submitted = Instant::now();
        let options = SubmitOptions {
            priority: -10,
            ..SubmitOptions::default()
        };
        let id = rt
            .submit_with(
                Chaos::Start {
                    n: n as u64,
                    fail_first: 0,
                },
                options,
            )
            .await?;
        let rt = rt.clone();
        waits.push(tokio::spawn(async move {
            rt.wait_record(id).await.map(|_| submitted.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = Vec::with_capacity(urgent);
    for wait in waits {
        latencies.push(wait.await.map_err(|e| Error::Scenario(e.to_string()))??);
    }
    latencies.sort();
    let unfinished = loop {
        let counts = rt.counts().await?;
        let unfinished: u64 = counts.iter().filter(|c| !c.status.is_finished()).map(|c| c.count).sum();
        if unfinished == 0 || started.elapsed() > Duration::from_secs(600) {
            let completed: u64 = counts
                .iter()
                .filter(|c| c.status == JobState::Completed)
                .map(|c| c.count)
                .sum();
            break (jobs + urgent as u64).saturating_sub(completed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let drained = started.elapsed();
    let retries = rt.metrics().iter().map(|m| m.retries).sum();
    rt.shutdown().await?;
    Ok(Storm {
        jobs,
        retries,
        unfinished,
        drained,
        urgent,
        urgent_p50: latencies.get(latencies.len() / 2).copied().unwrap_or_default(),
        urgent_max: latencies.last().copied().unwrap_or_default(),
    })
}

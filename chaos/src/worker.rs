//! The worker process that scenarios start, kill, freeze and restart: the
//! chaos binary run as `runekernel-chaos worker <spec> work`. It runs jobs
//! until none is left unfinished, then shuts down.

use std::path::PathBuf;
use std::time::Duration;

use runekernel::prelude::*;

use crate::machine::{Chaos, Steps};
use crate::{store, Error};

/// How long a worker's leases last: short, so that a killed worker's jobs
/// come back within a round.
pub const LEASE: Duration = Duration::from_millis(1_000);
/// How often a worker extends its leases.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// A runtime over the store `spec` names, running `Chaos` jobs with
/// `workers` workers, each step taking `step` and logged to `runs`.
pub async fn runtime(spec: &str, workers: usize, step: Duration, runs: Option<PathBuf>) -> Result<Runtime, Error> {
    let storage = store::open(spec).await?;
    Ok(Runtime::builder()
        .shared_storage(storage)
        .register(Chaos::handler(Steps { step, runs }))
        .workers(workers)
        .lease(LEASE)
        .heartbeat(HEARTBEAT)
        .build()
        .await?)
}

/// Runs jobs on `spec` until every job is finished (a job that fails is
/// finished too: the audit counts it).
pub async fn work(spec: &str, step: Duration, runs: Option<PathBuf>) -> Result<(), Error> {
    let rt = runtime(spec, 8, step, runs).await?;
    loop {
        // A failed look (the connection was cut) is tried again, as the
        // runtime's own claims and commits are.
        match rt.counts().await {
            Ok(counts) if counts.iter().all(|row| row.status.is_finished()) => break,
            Ok(_) => {}
            Err(error) => eprintln!("runekernel-chaos worker: counting jobs failed, retrying: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rt.shutdown().await?;
    Ok(())
}

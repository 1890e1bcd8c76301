//! A worker process for the crash tests: it submits `Pipeline` jobs, or runs
//! them until none is left unfinished. The tests kill it with SIGKILL
//! mid-run and start it again.
//!
//! ```text
//! rk-worker <sqlite:PATH | rocksdb:PATH | postgres:URL#SCHEMA> submit <N>
//! rk-worker <sqlite:PATH | rocksdb:PATH | postgres:URL#SCHEMA> work
//! ```
//! `STEP_MS` sets how long each step takes (default 20).

use std::sync::Arc;
use std::time::Duration;

use runekernel::prelude::*;
use runekernel::storage::{PostgresOptions, PostgresStorage, SqliteStorage, Storage};
use runekernel_tests::machines::{Pipeline, PipelineWorker};

async fn open(spec: &str) -> Result<Arc<dyn Storage>, Box<dyn std::error::Error>> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Arc::new(SqliteStorage::open(path)?));
    }
    #[cfg(feature = "rocksdb")]
    if let Some(path) = spec.strip_prefix("rocksdb:") {
        return Ok(Arc::new(runekernel::storage::RocksDbStorage::open(path)?));
    }
    if let Some(rest) = spec.strip_prefix("postgres:") {
        let (url, schema) = rest.rsplit_once('#').ok_or("postgres:URL#SCHEMA")?;
        let options = PostgresOptions::default().schema(schema);
        return Ok(Arc::new(PostgresStorage::connect_with(url, options).await?));
    }
    Err(format!("unknown storage `{spec}`").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(spec), Some(mode)) = (args.get(1), args.get(2)) else {
        return Err("usage: rk-worker <storage> submit <N> | work".into());
    };
    let storage = open(spec).await?;
    let step_ms = std::env::var("STEP_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let rt = Runtime::builder()
        .shared_storage(storage.clone())
        .register(Pipeline::handler(PipelineWorker { step_ms }))
        .workers(8)
        .lease(Duration::from_millis(1_000))
        .heartbeat(Duration::from_millis(300))
        .build()
        .await?;
    match mode.as_str() {
        "submit" => {
            let n: u64 = args.get(3).ok_or("submit needs a count")?.parse()?;
            rt.submit_many((0..n).map(|n| Pipeline::Received { n })).await?;
        }
        "work" => loop {
            let unfinished: u64 = storage
                .counts()
                .await?
                .iter()
                .filter(|row| !row.status.is_finished())
                .map(|row| row.count)
                .sum();
            if unfinished == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        },
        other => return Err(format!("unknown mode `{other}`").into()),
    }
    rt.shutdown().await?;
    Ok(())
}

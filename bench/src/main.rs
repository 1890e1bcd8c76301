//! RuneKernel's benchmark harness.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- [--quick] [--only WORKLOAD] [--backend NAME]
//! ```
//! Postgres rows need `DATABASE_URL`. Build with `--features rocksdb` for the
//! RocksDB rows. Prints a table; see BENCHMARKS.md for the latest one.

mod floor;
mod machines;
mod workloads;

use std::sync::Arc;

use runekernel::storage::{InMemoryStorage, PostgresOptions, PostgresStorage, SqliteOptions, SqliteStorage, Storage, Synchronous};

/// One result row.
struct Row {
    workload: &'static str,
    backend: &'static str,
    n: u64,
    value: f64,
    unit: &'static str,
    floor: Option<f64>,
}

/// A fresh storage of the named backend, and a guard that cleans up after it.
async fn open(backend: &str, dir: &tempfile::TempDir, url: Option<&str>) -> Option<(Arc<dyn Storage>, Option<String>)> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.path().join(format!("{backend}-{n}"));
    Some(match backend {
        "memory" => (Arc::new(InMemoryStorage::new()), None),
        "sqlite" => (Arc::new(SqliteStorage::open(path).expect("open SQLite")), None),
        "sqlite-sync-off" => {
            let options = SqliteOptions { synchronous: Synchronous::Off, ..SqliteOptions::default() };
            (Arc::new(SqliteStorage::open_with(path, options).expect("open SQLite")), None)
        }
        "postgres" => {
            let schema = format!("rk_bench_{}_{n}", std::process::id());
            let options = PostgresOptions::default().schema(schema.clone());
            (Arc::new(PostgresStorage::connect_with(url?, options).await.expect("connect")), Some(schema))
        }
        #[cfg(feature = "rocksdb")]
        "rocksdb" => (Arc::new(runekernel::storage::RocksDbStorage::open(path).expect("open RocksDB")), None),
        _ => return None,
    })
}

async fn cleanup(url: Option<&str>, schema: Option<String>) {
    if let (Some(url), Some(schema)) = (url, schema) {
        use sqlx::Executor;
        if let Ok(pool) = sqlx::PgPool::connect(url).await {
            let _ = pool.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))).await;
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let wants = |w: &str| only.as_deref().is_none_or(|o| o == w);
    let url = std::env::var("DATABASE_URL").ok();
    let url = url.as_deref();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut backends = vec!["memory", "sqlite", "sqlite-sync-off"];
    if url.is_some() {
        backends.push("postgres");
    } else {
        eprintln!("DATABASE_URL is not set: no Postgres rows");
    }
    if cfg!(feature = "rocksdb") {
        backends.push("rocksdb");
    }
    if let Some(chosen) = args.iter().position(|a| a == "--backend").and_then(|i| args.get(i + 1)) {
        backends.retain(|b| b == chosen);
    }
    let sizes = |backend: &str| -> Vec<u64> {
        match (quick, backend) {
            (true, _) => vec![10_000],
            (false, "memory" | "sqlite" | "sqlite-sync-off") => vec![10_000, 100_000, 1_000_000],
            (false, _) => vec![10_000, 100_000],
        }
    };
    let print = |row: Row| {
        let floor = row.floor.map_or(String::from("-"), |f| format!("{f:.0}"));
        println!(
            "| {:<16} | {:<16} | {:>9} | {:>12.2} | {:<10} | {:>10} |",
            row.workload, row.backend, row.n, row.value, row.unit, floor
        );
    };
    println!("| {:<16} | {:<16} | {:>9} | {:>12} | {:<10} | {:>10} |", "workload", "backend", "N", "runekernel", "unit", "raw floor");
    println!("|{}|", ["-"; 6].map(|d| d.repeat(3)).join("|"));

    for backend in &backends {
        for n in sizes(backend) {
            if wants("burn-down") {
                let Some((storage, schema)) = open(backend, &dir, url).await else { continue };
                let rate = workloads::burn_down(storage, n, false).await;
                cleanup(url, schema).await;
                let floor = match *backend {
                    "sqlite" => Some(floor::sqlite(&dir.path().join(format!("floor-full-{n}")), n, "FULL")),
                    "sqlite-sync-off" => Some(floor::sqlite(&dir.path().join(format!("floor-off-{n}")), n, "OFF")),
                    "postgres" => Some(floor::postgres(url.unwrap_or_default(), n, 4).await),
                    _ => None,
                };
                print(Row { workload: "burn-down", backend, n, value: rate, unit: "jobs/s", floor });
            }
            if wants("burn-down-3step") {
                let Some((storage, schema)) = open(backend, &dir, url).await else { continue };
                let rate = workloads::burn_down(storage, n, true).await;
                cleanup(url, schema).await;
                print(Row { workload: "burn-down-3step", backend, n, value: rate * 3.0, unit: "steps/s", floor: None });
            }
            if wants("bulk-submit") {
                let Some((storage, schema)) = open(backend, &dir, url).await else { continue };
                let rate = workloads::bulk_submit(storage, n).await;
                cleanup(url, schema).await;
                print(Row { workload: "bulk-submit", backend, n, value: rate, unit: "jobs/s", floor: None });
            }
        }
        if wants("latency") {
            let Some((storage, schema)) = open(backend, &dir, url).await else { continue };
            let samples = if quick { 100 } else { 500 };
            let (p50, p99) = workloads::latency(storage, samples).await;
            cleanup(url, schema).await;
            print(Row { workload: "latency-p50", backend, n: samples as u64, value: p50, unit: "ms", floor: None });
            print(Row { workload: "latency-p99", backend, n: samples as u64, value: p99, unit: "ms", floor: None });
        }
    }
    if wants("memory") {
        let n = if quick { 200_000 } else { 1_000_000 };
        let per_job = workloads::memory_per_job(n).await;
        print(Row { workload: "memory", backend: "memory", n, value: per_job, unit: "bytes/job", floor: None });
    }
    // apalis runs in a binary of its own (bench/apalis: its SQLite driver
    // links another libsqlite3-sys than rusqlite). Ratio lines are printed
    // only for comparisons that were measured.
    println!("apalis: not measured by this build; no ratio lines");
}

//! RuneKernel's benchmark harness.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- [--quick] [--only WORKLOAD] [--backend NAME] [--n N] [--without-apalis]
//! runekernel-bench --memory-of runekernel|apalis N   # one memory figure, used by the run itself
//! runekernel-bench --help                            # the flags (`args.rs`); an unknown one stops the run
//! ```
//! Every workload runs on RuneKernel and, where apalis has the backend, on
//! apalis 1.0 (`peer.rs`), with the same N, workers and machine. Postgres
//! rows need `DATABASE_URL`. Build with `--features rocksdb` for the RocksDB
//! rows. Each throughput figure is the median of a few trials
//! (`trials.rs`). Prints a table, then one `ratio` line per comparison, then
//! the burn-down against apalis tuned for its best (`peer::Tuning::SWEEP`)
//! and one `ratio-best` line per backend and N; see BENCHMARKS.md for the
//! latest ones.

mod args;
mod floor;
mod machines;
mod peer;
mod trials;
mod workloads;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runekernel::storage::{
    InMemoryStorage, PostgresOptions, PostgresStorage, SqliteOptions, SqliteStorage, Storage, Synchronous,
};

/// One result row.
struct Row {
    workload: &'static str,
    backend: &'static str,
    n: u64,
    value: f64,
    unit: &'static str,
    floor: Option<f64>,
    /// apalis's figure for the same workload, if it has the backend.
    apalis: Option<f64>,
}

impl Row {
    /// Whether a higher figure is better (throughput) or a lower one
    /// (latency, memory).
    fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }

    /// How many times better RuneKernel is than apalis.
    fn advantage(&self) -> Option<f64> {
        let apalis = self.apalis?;
        Some(if self.higher_is_better() {
            self.value / apalis
        } else {
            apalis / self.value
        })
    }
}

/// A burn-down's figures with apalis tuned each way of [`peer::Tuning::SWEEP`].
struct Tuned {
    backend: &'static str,
    n: u64,
    /// RuneKernel's jobs per second.
    ours: f64,
    /// apalis's jobs per second with each tuning, where it ran.
    apalis: Vec<(peer::Tuning, Option<f64>)>,
}

impl Tuned {
    /// apalis's best figure and the tuning that reached it.
    fn best(&self) -> Option<(peer::Tuning, f64)> {
        self.apalis
            .iter()
            .filter_map(|&(tuning, figure)| Some((tuning, figure?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// apalis's backend for one of ours, with a fresh file under `dir`.
async fn peer_of<'a>(backend: &str, file: &'a Path, url: Option<&'a str>, with_apalis: bool) -> Option<peer::Peer<'a>> {
    if with_apalis && backend == "postgres" {
        checkpoint(url).await;
    }
    match backend {
        _ if !with_apalis => None,
        "memory" => Some(peer::Peer::Memory),
        "sqlite" => Some(peer::Peer::Sqlite {
            path: file,
            sync_off: false,
        }),
        "sqlite-sync-off" => Some(peer::Peer::Sqlite {
            path: file,
            sync_off: true,
        }),
        "postgres" => url.map(|url| peer::Peer::Postgres { url }),
        _ => None,
    }
}

/// apalis's figure, or `None` with the reason on stderr.
fn measured<T>(what: &str, result: Result<T, apalis::prelude::BoxDynError>) -> Option<T> {
    result.map_err(|e| eprintln!("apalis {what}: {e}")).ok()
}

/// Our side's figure for one workload: the median of its trials
/// (`trials.rs`), each on a fresh storage of `backend`, cleaned up after.
async fn ours(
    backend: &str,
    dir: &tempfile::TempDir,
    url: Option<&str>,
    workload: impl AsyncFn(Arc<dyn Storage>) -> f64,
) -> Option<f64> {
    trials::median(async || {
        let (storage, schema) = open(backend, dir, url).await?;
        let figure = workload(storage).await;
        cleanup(url, schema).await;
        Some(figure)
    })
    .await
}

/// apalis's figure for one workload: the median of its trials, each on a
/// fresh store (a new file from `file`, or a new database); `None` where
/// apalis has no such backend or is not run.
async fn theirs(
    backend: &str,
    url: Option<&str>,
    with_apalis: bool,
    file: &mut impl FnMut() -> std::path::PathBuf,
    workload: impl for<'p> AsyncFn(peer::Peer<'p>) -> Option<f64>,
) -> Option<f64> {
    trials::median(async || {
        let file = file();
        let peer = peer_of(backend, &file, url, with_apalis).await?;
        workload(peer).await
    })
    .await
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
            let options = SqliteOptions {
                synchronous: Synchronous::Off,
                ..SqliteOptions::default()
            };
            (
                Arc::new(SqliteStorage::open_with(path, options).expect("open SQLite")),
                None,
            )
        }
        "postgres" => {
            checkpoint(url).await;
            let schema = format!("rk_bench_{}_{n}", std::process::id());
            let options = PostgresOptions {
                min_connections: workloads::WARM_CONNECTIONS,
                ..PostgresOptions::default().schema(schema.clone())
            };
            (
                Arc::new(PostgresStorage::connect_with(url?, options).await.expect("connect")),
                Some(schema),
            )
        }
        #[cfg(feature = "rocksdb")]
        "rocksdb" => (
            Arc::new(runekernel::storage::RocksDbStorage::open(path).expect("open RocksDB")),
            None,
        ),
        _ => return None,
    })
}

/// Has Postgres write out its dirty pages now (`CHECKPOINT`), before a
/// measurement, so that none begins in the middle of one. The WAL of the
/// runs before would otherwise start one every half gigabyte or five minutes
/// and slow whichever side it landed on by a third or more. Without the
/// right to (superuser or `pg_checkpoint`), says so and goes on.
async fn checkpoint(url: Option<&str>) {
    let Some(url) = url else { return };
    if let Err(e) = run_sql(url, String::from("CHECKPOINT")).await {
        eprintln!("note: CHECKPOINT before a Postgres measurement failed: {e}");
    }
}

async fn cleanup(url: Option<&str>, schema: Option<String>) {
    if let (Some(url), Some(schema)) = (url, schema) {
        let _ = run_sql(url, format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await;
    }
}

/// Runs one statement on a connection of its own, outside both sides' pools.
async fn run_sql(url: &str, sql: String) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    let pool = sqlx::PgPool::connect(url).await?;
    let done = pool.execute(sqlx::AssertSqlSafe(sql)).await.map(|_| ());
    pool.close().await;
    done
}

#[tokio::main]
async fn main() {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args::Command::Run(args)) => args,
        Ok(args::Command::Help) => {
            println!("{}", args::USAGE);
            return;
        }
        Err(message) => {
            eprintln!("runekernel-bench: {message}");
            std::process::exit(2);
        }
    };
    if let Some((side, n)) = args.memory_of {
        let per_job = match side {
            "apalis" => peer::memory_per_job(n).await.unwrap_or(f64::NAN),
            _ => workloads::memory_per_job(n).await,
        };
        println!("{per_job}");
        return;
    }
    let (quick, with_apalis, chosen_n) = (args.quick, args.with_apalis, args.n);
    let wants = |w: &str| args.only.is_none_or(|o| o == w);
    let url = std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty());
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
    if let Some(chosen) = args.backend {
        if !backends.contains(&chosen) {
            let needs = if chosen == "postgres" {
                "DATABASE_URL"
            } else {
                "a build with --features rocksdb"
            };
            eprintln!("runekernel-bench: --backend {chosen} needs {needs}");
            std::process::exit(2);
        }
        backends.retain(|b| *b == chosen);
    }
    let sizes = |backend: &str| -> Vec<u64> {
        match (quick, backend) {
            _ if chosen_n.is_some() => chosen_n.into_iter().collect(),
            (true, _) => vec![10_000],
            (false, "memory" | "sqlite" | "sqlite-sync-off") => vec![10_000, 100_000, 1_000_000],
            (false, _) => vec![10_000, 100_000],
        }
    };
    // apalis's SQLite burn-down slows as its table grows; past this budget
    // its rate is reported over the jobs it ran.
    let budget = Duration::from_secs(if quick { 30 } else { 60 });
    let mut rows = Vec::new();
    let mut tuned: Vec<Tuned> = Vec::new();
    let mut print = |row: Row| {
        let floor = row.floor.map_or(String::from("-"), |f| format!("{f:.0}"));
        let apalis = row.apalis.map_or(String::from("-"), |a| format!("{a:.2}"));
        println!(
            "| {:<16} | {:<16} | {:>9} | {:>12.2} | {:>12} | {:<10} | {:>10} |",
            row.workload, row.backend, row.n, row.value, apalis, row.unit, floor
        );
        rows.push(row);
    };
    println!(
        "Throughput: each side's median of up to {} trials, as many as start within {:?} (trials.rs).\n",
        trials::MAX,
        trials::TIME
    );
    println!(
        "| {:<16} | {:<16} | {:>9} | {:>12} | {:>12} | {:<10} | {:>10} |",
        "workload", "backend", "N", "runekernel", "apalis", "unit", "raw floor"
    );
    println!("|{}|", ["-"; 7].map(|d| d.repeat(3)).join("|"));

    let mut files = 0;
    let mut apalis_file = || {
        files += 1;
        dir.path().join(format!("apalis-{files}.sqlite"))
    };
    for backend in &backends {
        for n in sizes(backend) {
            for three_steps in [false, true] {
                let workload = if three_steps { "burn-down-3step" } else { "burn-down" };
                if !wants(workload) {
                    continue;
                }
                let ours = ours(backend, &dir, url, async |storage| {
                    workloads::burn_down(storage, n, three_steps).await
                });
                let Some(rate) = ours.await else { continue };
                let floor = match (*backend, three_steps) {
                    (_, true) => None,
                    ("sqlite", _) => Some(floor::sqlite(&dir.path().join(format!("floor-full-{n}")), n, "FULL")),
                    ("sqlite-sync-off", _) => Some(floor::sqlite(&dir.path().join(format!("floor-off-{n}")), n, "OFF")),
                    ("postgres", _) => {
                        checkpoint(url).await;
                        Some(floor::postgres(url.unwrap_or_default(), n, 4).await)
                    }
                    _ => None,
                };
                // The single-step burn-down runs apalis with every tuning of
                // the sweep; the table's column is the same configuration's.
                let tunings: &[peer::Tuning] = if three_steps {
                    &[peer::Tuning::SAME]
                } else {
                    &peer::Tuning::SWEEP
                };
                let mut apalis = Vec::with_capacity(tunings.len());
                for &tuning in tunings {
                    let figure = theirs(backend, url, with_apalis, &mut apalis_file, async |peer| {
                        apalis_burn_down(peer, backend, n, three_steps, budget, tuning).await
                    });
                    apalis.push((tuning, figure.await));
                }
                let (steps, unit) = if three_steps { (3.0, "steps/s") } else { (1.0, "jobs/s") };
                print(Row {
                    workload,
                    backend,
                    n,
                    value: rate * steps,
                    unit,
                    floor,
                    apalis: apalis.first().and_then(|&(_, figure)| figure),
                });
                if !three_steps && with_apalis {
                    tuned.push(Tuned {
                        backend,
                        n,
                        ours: rate,
                        apalis,
                    });
                }
            }
            if wants("bulk-submit") {
                let ours = ours(backend, &dir, url, async |storage| {
                    workloads::bulk_submit(storage, n).await
                });
                let Some(rate) = ours.await else { continue };
                let apalis = theirs(backend, url, with_apalis, &mut apalis_file, async |peer| {
                    measured("bulk-submit", peer::bulk_submit(peer, n).await)
                });
                print(Row {
                    workload: "bulk-submit",
                    backend,
                    n,
                    value: rate,
                    unit: "jobs/s",
                    floor: None,
                    apalis: apalis.await,
                });
            }
        }
        if wants("latency") {
            let Some((storage, schema)) = open(backend, &dir, url).await else {
                continue;
            };
            let samples = if quick { 100 } else { 500 };
            let (p50, p99) = workloads::latency(storage, samples).await;
            cleanup(url, schema).await;
            let file = apalis_file();
            let apalis = match peer_of(backend, &file, url, with_apalis).await {
                Some(peer) => measured("latency", peer::latency(peer, samples).await),
                None => None,
            };
            let n = samples as u64;
            let (a50, a99) = (apalis.map(|a| a.0), apalis.map(|a| a.1));
            print(Row {
                workload: "latency-p50",
                backend,
                n,
                value: p50,
                unit: "ms",
                floor: None,
                apalis: a50,
            });
            print(Row {
                workload: "latency-p99",
                backend,
                n,
                value: p99,
                unit: "ms",
                floor: None,
                apalis: a99,
            });
        }
    }
    if wants("memory") && backends.contains(&"memory") {
        let n = if quick { 200_000 } else { 1_000_000 };
        let per_job = memory_in_child("runekernel", n).unwrap_or(f64::NAN);
        let apalis = if with_apalis {
            memory_in_child("apalis", n)
        } else {
            None
        };
        print(Row {
            workload: "memory",
            backend: "memory",
            n,
            value: per_job,
            unit: "bytes/job",
            floor: None,
            apalis,
        });
    }
    for row in &rows {
        if let (Some(apalis), Some(advantage)) = (row.apalis, row.advantage().filter(|a| a.is_finite())) {
            println!(
                "ratio {} {} {} {:.2} {:.2} {:.2}",
                row.workload, row.backend, row.n, row.value, apalis, advantage
            );
        }
    }
    print_tuned(&tuned);
}

/// Bytes per pending in-memory job on `side`, measured in a fresh process of
/// this harness (`--memory-of SIDE N`), so that neither side reuses memory
/// the other freed.
fn memory_in_child(side: &str, n: u64) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["--memory-of", side, &n.to_string()])
        .output()
        .ok()?;
    let per_job: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    per_job.is_finite().then_some(per_job)
}

/// apalis's burn-down rate in steps per second with `tuning`, noting on
/// stdout when it ran out of time.
async fn apalis_burn_down(
    peer: peer::Peer<'_>,
    backend: &str,
    n: u64,
    three: bool,
    budget: Duration,
    tuning: peer::Tuning,
) -> Option<f64> {
    let result = measured("burn-down", peer::burn_down(peer, n, three, budget, tuning).await)?;
    if result.ran < n {
        println!(
            "note: apalis ({tuning}) on {backend} finished {} of {n} jobs in the {budget:?} budget; its figure is over the steps it ran",
            result.ran
        );
    }
    Some(result.steps_per_second)
}

/// The burn-down against apalis with each tuning of the sweep: a table of
/// apalis's figures, then one `ratio-best` line per row (backend, N, ours,
/// apalis's best, its tuning, ours over it).
fn print_tuned(tuned: &[Tuned]) {
    if tuned.is_empty() {
        return;
    }
    let header: Vec<String> = peer::Tuning::SWEEP.iter().map(|t| format!("apalis {t}")).collect();
    println!("\nburn-down against apalis tuned (concurrency/fetch), jobs/s:\n");
    println!(
        "| {:<16} | {:>9} | {:>12} | {} | {:>10} |",
        "backend",
        "N",
        "runekernel",
        header
            .iter()
            .map(|h| format!("{h:>16}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "vs best"
    );
    println!("|{}|", vec!["---"; 4 + header.len()].join("|"));
    for row in tuned {
        let figures: Vec<String> = row
            .apalis
            .iter()
            .map(|(_, figure)| figure.map_or(String::from("-"), |f| format!("{f:.2}")))
            .map(|f| format!("{f:>16}"))
            .collect();
        let versus = row
            .best()
            .map_or(String::from("-"), |(_, best)| format!("{:.2}", row.ours / best));
        println!(
            "| {:<16} | {:>9} | {:>12.2} | {} | {:>10} |",
            row.backend,
            row.n,
            row.ours,
            figures.join(" | "),
            versus
        );
    }
    for row in tuned {
        if let Some((tuning, best)) = row.best() {
            println!(
                "ratio-best burn-down {} {} {:.2} {:.2} {tuning} {:.2}",
                row.backend,
                row.n,
                row.ours,
                best,
                row.ours / best
            );
        }
    }
}

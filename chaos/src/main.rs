//! RuneKernel's chaos suite: worker processes killed with SIGKILL at random
//! points, frozen with SIGSTOP past their lease, their wall clock stepped
//! back and forward (Debian's `faketime`), cut off from Postgres by the
//! server, through a restart of the server in immediate mode; SQLite on a
//! full disk; a retry storm; the admin API under load, and fuzzed from its
//! own OpenAPI document by schemathesis (when installed). Every scenario ends
//! with an audit of every job (lost, transitions committed twice,
//! histories that do not replay, handler re-runs and whether a lost lease
//! explains each), printed as a table and written to RELIABILITY.md.
//!
//! ```text
//! cargo run --release -p runekernel-chaos -- --quick     # a few minutes (what CI runs)
//! cargo run --release -p runekernel-chaos                # the full suite
//! cargo run --release -p runekernel-chaos --features rocksdb -- --quick   # with RocksDB rounds
//! cargo run -p runekernel-chaos --features rocksdb -- --quick --backend rocksdb   # RocksDB's scenarios only
//! ```
//!
//! Postgres scenarios read `DATABASE_URL` and run each in a schema of its
//! own; without it they are skipped with a notice, except under `CI=true`.
//! `pg_terminate_backend` ends every other client connection to that
//! database, and the restart scenario restarts the local server
//! (`pg_ctlcluster ... restart -m immediate`): run the suite against a
//! server nothing else uses.
//! Exits with status 1 when an audit finds a job lost, a transition
//! committed twice, a history that does not replay, or a re-run no lost
//! lease explains.

mod audit;
mod disk;
mod fuzz;
mod load;
mod machine;
mod processes;
mod report;
mod scenarios;
mod store;
mod storm;
mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runekernel::storage::testing::postgres::TestSchemas;

/// Why the suite could not run a scenario.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A scenario could not do what it needs (a worker that would not
    /// finish, a signal that could not be sent).
    #[error("{0}")]
    Scenario(String),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] runekernel::RuntimeError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] runekernel::storage::StorageError),
    /// The admin API's configuration was refused.
    #[error(transparent)]
    Token(#[from] runekernel::admin::TokenError),
    /// A file or a process could not be used.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How big each scenario is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// `--quick` or the full suite.
    pub quick: bool,
    jobs: u64,
    kill_rounds: usize,
    clock_steps: usize,
    terminations: usize,
    storm_jobs: u64,
    urgent: usize,
    clients: usize,
    load_for: Duration,
    fuzz_examples: u32,
}

impl Size {
    fn new(quick: bool) -> Self {
        if quick {
            Size {
                quick,
                jobs: 300,
                kill_rounds: 4,
                clock_steps: 6,
                terminations: 3,
                storm_jobs: 2_000,
                urgent: 50,
                clients: 4,
                load_for: Duration::from_secs(3),
                fuzz_examples: 20,
            }
        } else {
            Size {
                quick,
                jobs: 2_000,
                kill_rounds: 20,
                clock_steps: 30,
                terminations: 8,
                storm_jobs: 10_000,
                urgent: 200,
                clients: 16,
                load_for: Duration::from_secs(15),
                fuzz_examples: 200,
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => run_worker(&args[1..]).await,
        _ => run_suite(&args).await,
    };
    if let Err(error) = result {
        eprintln!("runekernel-chaos: {error}");
        std::process::exit(2);
    }
}

async fn run_worker(args: &[String]) -> Result<(), Error> {
    let spec = args.first().ok_or_else(|| Error::Usage("worker <spec>".into()))?;
    let step = std::env::var("CHAOS_STEP_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_millis(processes::STEP_MS), Duration::from_millis);
    let runs = std::env::var_os("CHAOS_RUNS").map(PathBuf::from);
    worker::work(spec, step, runs).await
}

async fn run_suite(args: &[String]) -> Result<(), Error> {
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut out = Some(PathBuf::from("RELIABILITY.md"));
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => {
                out = Some(PathBuf::from(
                    rest.next().ok_or_else(|| Error::Usage("--out PATH".into()))?,
                ))
            }
            "--no-write" => out = None,
            "--backend" => {
                let backend = rest
                    .next()
                    .ok_or_else(|| Error::Usage("--backend sqlite|postgres|rocksdb".into()))?;
                if !["sqlite", "postgres", "rocksdb"].contains(&backend.as_str()) {
                    return Err(Error::Usage(format!(
                        "unknown backend `{backend}`: sqlite, postgres or rocksdb"
                    )));
                }
                if backend == "rocksdb" && !cfg!(feature = "rocksdb") {
                    return Err(Error::Usage(
                        "--backend rocksdb needs a build with --features rocksdb".into(),
                    ));
                }
                only = Some(backend.clone());
            }
            "-h" | "--help" => {
                println!(
                    "usage: runekernel-chaos [--quick] [--backend sqlite|postgres|rocksdb] [--out PATH | --no-write]"
                );
                return Ok(());
            }
            other => return Err(Error::Usage(format!("unknown argument `{other}`; see --help"))),
        }
    }
    let size = Size::new(quick);
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let sqlite = |name: &str| format!("sqlite:{}", dir.path().join(name).display());
    let mut outcomes = Vec::new();
    let mut notes = Vec::new();

    let wants = |backend: &str| only.as_deref().is_none_or(|o| o == backend);

    if wants("sqlite") {
        println!("SIGKILL rounds on SQLite...");
        outcomes.push(scenarios::kill_rounds(&sqlite("kill.db"), 2, size.jobs, size.kill_rounds, dir.path()).await?);
    }
    #[cfg(feature = "rocksdb")]
    if wants("rocksdb") {
        println!("SIGKILL rounds on RocksDB...");
        let spec = format!("rocksdb:{}", dir.path().join("kill-rocks").display());
        outcomes.push(scenarios::kill_rounds(&spec, 1, size.jobs, size.kill_rounds, dir.path()).await?);
    }
    if wants("sqlite") {
        println!("SIGSTOP on SQLite...");
        outcomes.push(scenarios::frozen_worker(&sqlite("freeze.db"), size.jobs, dir.path()).await?);
    }
    let faketime = std::path::Path::new(processes::LIBFAKETIME).exists();
    if faketime && wants("sqlite") {
        println!("clock steps on SQLite...");
        outcomes.push(scenarios::clock_stepped(&sqlite("clock.db"), size.jobs, size.clock_steps, dir.path()).await?);
    } else if !faketime {
        notes.push(format!(
            "{} is missing (Debian's `faketime`): the clock scenarios did not run.",
            processes::LIBFAKETIME
        ));
    }
    match database_url()?.filter(|_| wants("postgres")) {
        Some(url) => {
            let schemas = TestSchemas::new(&url);
            let postgres = |prefix: &str| format!("postgres:{url}#{}", schemas.fresh(prefix));
            println!("SIGKILL rounds on Postgres...");
            outcomes.push(
                scenarios::kill_rounds(&postgres("rk_chaos_kill"), 2, size.jobs, size.kill_rounds, dir.path()).await?,
            );
            println!("SIGSTOP on Postgres...");
            outcomes.push(scenarios::frozen_worker(&postgres("rk_chaos_freeze"), size.jobs, dir.path()).await?);
            if faketime {
                println!("clock steps on Postgres...");
                let spec = postgres("rk_chaos_clock");
                outcomes.push(scenarios::clock_stepped(&spec, size.jobs, size.clock_steps, dir.path()).await?);
            }
            println!("pg_terminate_backend on Postgres...");
            // Enough jobs to keep both workers busy through every round.
            let jobs = size.jobs * 3;
            outcomes.push(scenarios::connections_terminated(&url, jobs, size.terminations, dir.path()).await?);
            if can_restart_postgres() {
                println!("Postgres restarted -m immediate...");
                outcomes.push(scenarios::server_restarted(&url, jobs, dir.path()).await?);
            } else {
                notes.push("pg_ctlcluster is missing: the server restart scenario did not run.".to_owned());
            }
        }
        None if wants("postgres") => {
            notes.push("DATABASE_URL is unset: the Postgres scenarios did not run.".to_owned())
        }
        None => {}
    }
    if disk::can_mount(dir.path()) {
        if wants("sqlite") {
            println!("disk full on SQLite...");
            outcomes.push(disk::disk_full(dir.path(), "sqlite", "2m").await?);
        }
        #[cfg(feature = "rocksdb")]
        if wants("rocksdb") {
            // Room for RocksDB's log and manifest, then some jobs.
            println!("disk full on RocksDB...");
            let size = if size.quick { "8m" } else { "16m" };
            outcomes.push(disk::disk_full(dir.path(), "rocksdb", size).await?);
        }
    } else {
        notes.push("This process may not mount a tmpfs (it needs root): the disk-full scenario did not run.".into());
    }
    let (mut storm, mut load) = (None, None);
    if wants("sqlite") {
        println!("retry storm on SQLite...");
        storm = Some(storm::retry_storm(&sqlite("storm.db"), size.storm_jobs, size.urgent).await?);
        println!("admin API load on SQLite...");
        load = Some(load::admin_load(&sqlite("load.db"), size.clients, size.load_for).await?);
    }
    let fuzz = if !wants("sqlite") {
        None
    } else if fuzz::available() {
        println!("admin API fuzzed by schemathesis...");
        Some(fuzz::admin_fuzz(&sqlite("fuzz.db"), size.fuzz_examples).await?)
    } else {
        notes.push("schemathesis is not installed (`pip install schemathesis`): the admin API was not fuzzed.".into());
        None
    };

    let report = report::Report {
        size,
        outcomes,
        storm,
        load,
        fuzz,
        notes,
        took: started.elapsed(),
    };
    println!("\n{}", report.tables());
    if let Some(out) = out {
        std::fs::write(&out, report.document())?;
        println!("written to {}", out.display());
    }
    if !report.clean() {
        eprintln!("runekernel-chaos: an audit found a lost job, a transition committed twice, a history that does not replay, or a re-run that no lost lease explains");
        std::process::exit(1);
    }
    Ok(())
}

/// Whether this machine's Postgres can be restarted from here (Debian's
/// cluster tools, as on the project's machines).
fn can_restart_postgres() -> bool {
    std::path::Path::new("/usr/bin/pg_ctlcluster").exists() && std::path::Path::new("/etc/postgresql").is_dir()
}

/// `DATABASE_URL`, if set; under `CI=true` a missing one is an error.
fn database_url() -> Result<Option<String>, Error> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => Err(Error::Usage(
            "CI=true but DATABASE_URL is unset: the Postgres scenarios cannot run".into(),
        )),
        _ => {
            eprintln!("notice: DATABASE_URL is unset; skipping the Postgres scenarios");
            Ok(None)
        }
    }
}

//! The scenarios. Each sets up a store, submits jobs, does its damage,
//! lets the jobs finish, and returns what the audit counted and how long
//! recovery took.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use runekernel::prelude::*;
use runekernel::storage::testing::postgres::TestSchemas;

use crate::audit::{audit, Audit};
use crate::machine::Chaos;
use crate::processes::{self, finish, kill, signal};
use crate::worker::LEASE;
use crate::{store, Error};

/// What one scenario run on one backend found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario.
    pub scenario: &'static str,
    /// The backend it ran on.
    pub backend: String,
    /// What the audit counted.
    pub audit: Audit,
    /// From the last disruption to the last job finished.
    pub recovery: Duration,
    /// What else the scenario observed, if anything.
    pub detail: String,
}

/// How long to wait for the jobs of a scenario to finish once the damage
/// is done.
const FINISH_WITHIN: Duration = Duration::from_secs(300);

/// Submits `jobs` jobs to `spec` from this process (closed again at once,
/// since RocksDB admits one process at a time).
async fn submit(spec: &str, jobs: u64) -> Result<(), Error> {
    let rt = Runtime::builder()
        .shared_storage(store::open(spec).await?)
        .register(Chaos::handler(crate::machine::Steps {
            step: Duration::ZERO,
            runs: None,
        }))
        .workers(0)
        .build()
        .await?;
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
        rt.submit_many(chunk.iter().map(|&n| Chaos::Start { n, fail_first: 0 }))
            .await?;
    }
    rt.shutdown().await?;
    Ok(())
}

/// Audits the scenario's store once no worker runs; `disrupted` are the
/// worker processes whose leases the scenario made run out.
async fn audited(
    scenario: &'static str,
    spec: &str,
    jobs: u64,
    runs: &Path,
    disrupted: &[u32],
    recovery: Duration,
) -> Result<Outcome, Error> {
    let audit = audit(store::open(spec).await?, jobs, runs, disrupted).await?;
    Ok(Outcome {
        scenario,
        backend: store::backend(spec).to_owned(),
        audit,
        recovery,
        detail: String::new(),
    })
}

/// `rounds` rounds of `procs` worker processes on `spec`, each round ended
/// by a SIGKILL of all of them at a random point; then one worker runs the
/// rest.
pub async fn kill_rounds(spec: &str, procs: usize, jobs: u64, rounds: usize, dir: &Path) -> Result<Outcome, Error> {
    submit(spec, jobs).await?;
    let runs = dir.join(format!("runs-kill-{}.log", store::backend(spec)));
    let mut rng = rand::rng();
    for _ in 0..rounds {
        let workers = (0..procs)
            .map(|_| processes::start(spec, &runs))
            .collect::<Result<Vec<_>, _>>()?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..700))).await;
        for worker in workers {
            kill(worker)?;
        }
    }
    let killed = Instant::now();
    finish(processes::start(spec, &runs)?, FINISH_WITHIN)?;
    audited("SIGKILL rounds", spec, jobs, &runs, &[], killed.elapsed()).await
}

/// A worker frozen with SIGSTOP past its lease while another takes its
/// jobs over, then resumed: its late commits must be refused.
pub async fn frozen_worker(spec: &str, jobs: u64, dir: &Path) -> Result<Outcome, Error> {
    submit(spec, jobs).await?;
    let runs = dir.join(format!("runs-freeze-{}.log", store::backend(spec)));
    let frozen = processes::start(spec, &runs)?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(&frozen, "STOP")?;
    let other = processes::start(spec, &runs)?;
    // Well past the frozen worker's leases: the other worker takes its
    // jobs over and runs them.
    tokio::time::sleep(LEASE * 3).await;
    signal(&frozen, "CONT")?;
    let resumed = Instant::now();
    let disrupted = [frozen.id()];
    finish(other, FINISH_WITHIN)?;
    finish(frozen, FINISH_WITHIN)?;
    audited(
        "SIGSTOP past the lease",
        spec,
        jobs,
        &runs,
        &disrupted,
        resumed.elapsed(),
    )
    .await
}

/// Two workers, one of whose wall clock is stepped back and forward by
/// 400 ms (within the lease less a heartbeat) `steps` times, 300 ms apart,
/// while the other is killed and restarted at every other step.
pub async fn clock_stepped(spec: &str, jobs: u64, steps: usize, dir: &Path) -> Result<Outcome, Error> {
    submit(spec, jobs).await?;
    let runs = dir.join(format!("runs-clock-{}.log", store::backend(spec)));
    let offset = dir.join(format!("clock-offset-{}", store::backend(spec)));
    std::fs::write(&offset, "+0s")?;
    let skewed = processes::start_skewed(spec, &runs, &offset)?;
    let mut other = processes::start(spec, &runs)?;
    for step in 0..steps {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(&offset, if step % 2 == 0 { "-0.4s" } else { "+0.4s" })?;
        if step % 2 == 1 {
            kill(other)?;
            other = processes::start(spec, &runs)?;
        }
    }
    std::fs::write(&offset, "+0s")?;
    let stepped = Instant::now();
    let disrupted = [skewed.id()];
    finish(other, FINISH_WITHIN)?;
    finish(skewed, FINISH_WITHIN)?;
    let mut outcome = audited(
        "clock stepped ±400 ms",
        spec,
        jobs,
        &runs,
        &disrupted,
        stepped.elapsed(),
    )
    .await?;
    outcome.detail = format!("{steps} steps");
    Ok(outcome)
}

/// Every connection but the caller's to the test database terminated by
/// the server, `times` times while two workers run.
pub async fn connections_terminated(url: &str, jobs: u64, times: usize, dir: &Path) -> Result<Outcome, Error> {
    let schemas = TestSchemas::new(url);
    let spec = format!("postgres:{url}#{}", schemas.fresh("rk_chaos_term"));
    submit(&spec, jobs).await?;
    let runs = dir.join("runs-terminate-postgres.log");
    let workers = [processes::start(&spec, &runs)?, processes::start(&spec, &runs)?];
    let mut ended = 0;
    for _ in 0..times {
        tokio::time::sleep(Duration::from_millis(400)).await;
        ended += terminate_others(url)?;
    }
    let terminated = Instant::now();
    let disrupted = workers.each_ref().map(std::process::Child::id);
    for worker in workers {
        finish(worker, FINISH_WITHIN)?;
    }
    let mut outcome = audited(
        "pg_terminate_backend",
        &spec,
        jobs,
        &runs,
        &disrupted,
        terminated.elapsed(),
    )
    .await?;
    outcome.detail = format!("{ended} connections ended in {times} rounds");
    Ok(outcome)
}

/// The Postgres server restarted in immediate mode (no shutdown
/// checkpoint: a crash, as far as the data is concerned) while two workers
/// run; they must reconnect by themselves, their LISTEN included. Needs
/// Debian's `pg_ctlcluster` and the right to use it (root).
pub async fn server_restarted(url: &str, jobs: u64, dir: &Path) -> Result<Outcome, Error> {
    let schemas = TestSchemas::new(url);
    let spec = format!("postgres:{url}#{}", schemas.fresh("rk_chaos_restart"));
    submit(&spec, jobs).await?;
    let runs = dir.join("runs-restart-postgres.log");
    let workers = [processes::start(&spec, &runs)?, processes::start(&spec, &runs)?];
    tokio::time::sleep(Duration::from_millis(700)).await;
    let version = std::fs::read_dir("/etc/postgresql")?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| Error::Scenario("no cluster under /etc/postgresql".into()))?;
    let restarted = std::process::Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &version,
            "main",
            "restart",
            "-m",
            "immediate",
        ])
        .status()?;
    if !restarted.success() {
        return Err(Error::Scenario(format!("pg_ctlcluster restart failed: {restarted}")));
    }
    let back = Instant::now();
    let disrupted = workers.each_ref().map(std::process::Child::id);
    for worker in workers {
        finish(worker, FINISH_WITHIN)?;
    }
    audited(
        "server restarted -m immediate",
        &spec,
        jobs,
        &runs,
        &disrupted,
        back.elapsed(),
    )
    .await
}

/// Asks Postgres to terminate every other client connection to the
/// database of `url` (run with `psql`, the server's own client); returns
/// how many it ended.
fn terminate_others(url: &str) -> Result<u64, Error> {
    let output = std::process::Command::new("psql")
        .args([
            url,
            "-tAc",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        ])
        .output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0))
    } else {
        Err(Error::Scenario(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

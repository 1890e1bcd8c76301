//! The suite's figures as tables, and as the RELIABILITY.md document.

use std::fmt::Write as _;
use std::time::Duration;

use crate::fuzz::Fuzz;
use crate::load::Load;
use crate::scenarios::Outcome;
use crate::storm::Storm;
use crate::Size;

/// Everything one run of the suite measured.
pub struct Report {
    pub size: Size,
    pub outcomes: Vec<Outcome>,
    /// `None` when the run left SQLite out (`--backend`).
    pub storm: Option<Storm>,
    /// `None` when the run left SQLite out (`--backend`).
    pub load: Option<Load>,
    pub fuzz: Option<Fuzz>,
    pub notes: Vec<String>,
    pub took: Duration,
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

impl Report {
    /// Whether every audit is clean and every storm job finished.
    pub fn clean(&self) -> bool {
        self.outcomes.iter().all(|o| o.audit.clean())
            && self.storm.as_ref().is_none_or(|s| s.unfinished == 0)
            && self.fuzz.as_ref().is_none_or(|f| f.failures == 0)
    }

    /// The three tables, in Markdown.
    pub fn tables(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| scenario | backend | jobs | lost | committed twice | failing verify | handler re-runs | of them, soon after in a disrupted process | re-runs no lost lease explains | recovery | observed |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        for o in &self.outcomes {
            let a = o.audit;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                o.scenario,
                o.backend,
                a.jobs,
                a.lost,
                a.twice,
                a.unverified,
                a.reruns,
                a.after_disruption,
                a.unexplained,
                ms(o.recovery),
                o.detail
            );
        }
        if let Some(s) = &self.storm {
            let _ = writeln!(
            out,
            "\n| retry storm | jobs | retries | unfinished | drained in | urgent jobs | urgent p50 | urgent max |\n|---|---|---|---|---|---|---|---|\n| SQLite, 16 workers | {} | {} | {} | {} | {} | {} | {} |",
            s.jobs,
            s.retries,
            s.unfinished,
            ms(s.drained),
            s.urgent,
                ms(s.urgent_p50),
                ms(s.urgent_max)
            );
        }
        if let Some(l) = &self.load {
            let _ = writeln!(
            out,
            "\n| admin API load | clients | requests | errors | requests/s | p50 | p99 |\n|---|---|---|---|---|---|---|\n| SQLite, jobs running | {} | {} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            l.clients,
            l.requests,
            l.errors,
            l.requests as f64 / l.duration.as_secs_f64().max(f64::EPSILON),
                l.p50.as_secs_f64() * 1000.0,
                l.p99.as_secs_f64() * 1000.0
            );
        }
        if let Some(f) = &self.fuzz {
            let _ = writeln!(
                out,
                "\n| admin API fuzzed (schemathesis) | test cases | failures | summary |\n|---|---|---|---|\n| every operation of /openapi.json | {} | {} | {} |",
                f.cases, f.failures, f.summary
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }

    /// RELIABILITY.md: what the suite does, how to run it, and this run's
    /// tables.
    pub fn document(&self) -> String {
        let features = if cfg!(feature = "rocksdb") {
            " --features rocksdb"
        } else {
            ""
        };
        let quick = if self.size.quick { " -- --quick" } else { "" };
        let command = format!("cargo run --release -p runekernel-chaos{features}{quick}");
        format!(
            "# Reliability\n\n\
             What RuneKernel does when its processes are killed, frozen or cut off from their database, \
             measured by the chaos suite (`chaos/`). Each scenario submits jobs of a three-step machine, \
             does its damage while worker processes run them, lets them finish, and audits every job:\n\n\
             - **lost**: a submitted job missing, or not completed;\n\
             - **committed twice**: a state entered twice in a job's history;\n\
             - **failing verify**: a history that `Runtime::verify` does not replay;\n\
             - **handler re-runs**: handler calls beyond one per step (a step whose worker died or lost its \
             lease runs again elsewhere: handlers are at-least-once);\n\
             - **of them, soon after in a disrupted process**: a step run again by the same process within \
             half a lease of its previous run, in a process the scenario froze, stepped the clock of, or cut \
             off from its database (the disruption let the lease of the first run run out);\n\
             - **re-runs no lost lease explains**: the same in a process the scenario did not disrupt (a step \
             runs again only once the lease it ran under has run out: its worker died, froze, or could not \
             commit);\n\
             - **recovery**: from the last disruption until the last job finished (it includes waiting out \
             the dead workers' leases, {lease} ms).\n\n\
             All but handler re-runs must be 0; the suite exits with status 1 otherwise.\n\n\
             | scenario | what it does |\n|---|---|\n\
             | SIGKILL rounds | worker processes (two on SQLite and Postgres, one on RocksDB, which admits one process) killed with SIGKILL at a random point of each round, then one worker runs what is left |\n\
             | SIGSTOP past the lease | a worker frozen for three leases while another takes its jobs over, then resumed: its late commits must be refused |\n\
             | clock stepped ±400 ms | one worker's wall clock stepped back and forward by 400 ms (libfaketime) while another is killed and restarted |\n\
             | pg_terminate_backend | the server ends every client connection to the database, several times while two workers run; they must reconnect by themselves |\n\
             | server restarted -m immediate | the local Postgres server restarted in immediate mode (a crash, for its data) while two workers run; they must reconnect by themselves |\n\
             | disk full | SQLite on a 2 MiB tmpfs (RocksDB on 16 MiB, 8 MiB in the quick run) takes jobs until the disk refuses them, then gets room again: refusals are clear errors, nothing stored is lost, and the same store works on |\n\
             | retry storm | every job's first step fails twice (backoff from 100 ms, jitter 0.5) while urgent jobs of a higher priority arrive 20 ms apart |\n\
             | admin API load | loopback clients read jobs, machines and metrics while jobs run |\n\
             | admin API fuzzed | schemathesis (from PyPI) generates requests for every operation of `/openapi.json` while jobs run: no 5xx, no hang, every response allowed by the document |\n\n\
             ## Latest run\n\n\
             `{command}` (with `DATABASE_URL` set), on {date}, on a machine with {cores} cores ({cpu}); \
             the run took {took:.0} s.\n\n{tables}\n\
             {rocksdb}Not covered: the check that a request the document allows is accepted (a state the \
             document allows, any one-key object, is refused when the machine has no such state). The state codec \
             is fuzzed by a proptest (`tests/tests/codec_fuzz.rs`).\n",
            rocksdb = if cfg!(feature = "rocksdb") {
                ""
            } else {
                "RocksDB's rows need `--features rocksdb` (a long native build). "
            },
            lease = crate::worker::LEASE.as_millis(),
            date = today(),
            cores = std::thread::available_parallelism().map_or(0, usize::from),
            cpu = cpu_model(),
            took = self.took.as_secs_f64(),
            tables = self.tables(),
        )
    }
}

/// Today's date (UTC), as `date` prints it.
fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The processor's model name, from /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown processor".to_owned())
}

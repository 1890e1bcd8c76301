//! What a scenario left behind, counted: jobs lost, transitions committed
//! twice, histories that do not replay, and handler runs beyond one per
//! step, each re-run checked against what explains it.

use std::collections::{HashMap, HashSet};

use std::path::Path;
use std::sync::Arc;

use runekernel::prelude::*;
use runekernel::storage::{JobFilter, Storage};

use crate::machine::{Chaos, Steps};
use crate::worker::LEASE;
use crate::Error;

/// The counts of one scenario's audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Audit {
    /// Jobs found in storage.
    pub jobs: u64,
    /// Jobs submitted but missing, or not completed.
    pub lost: u64,
    /// Transitions committed more than once (a state entered twice).
    pub twice: u64,
    /// Histories that `Runtime::verify` rejects.
    pub unverified: u64,
    /// Handler runs beyond one per step.
    pub reruns: u64,
    /// Re-runs in the same process within half a lease of the run before,
    /// in a process the scenario disrupted (froze, stepped the clock of,
    /// cut off from its database): the disruption let its lease run out.
    pub after_disruption: u64,
    /// Re-runs that no lost lease explains: a step run again within half a
    /// lease by a process the scenario did not disrupt.
    pub unexplained: u64,
}

impl Audit {
    /// Whether every count that must be zero is.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.twice == 0 && self.unverified == 0 && self.unexplained == 0
    }
}

/// Audits the `expected` jobs stored in `storage` against the run log at
/// `runs`; `disrupted` are the processes whose leases the scenario made
/// run out (see [`Audit::after_disruption`]).
///
/// # Errors
/// Storage errors, or a run log that cannot be read.
pub async fn audit(storage: Arc<dyn Storage>, expected: u64, runs: &Path, disrupted: &[u32]) -> Result<Audit, Error> {
    let rt = Runtime::builder()
        .deterministic(0)
        .shared_storage(storage)
        .register(Chaos::handler(Steps {
            step: std::time::Duration::ZERO,
            runs: None,
        }))
        .build()
        .await?;
    let mut audit = Audit::default();
    let mut after = None;
    loop {
        let page = rt.list(&JobFilter::default(), after, 1_000).await?;
        for job in &page.jobs {
            audit.jobs += 1;
            if job.status != JobState::Completed {
                audit.lost += 1;
            }
            let history = rt.history(job.id).await?;
            let entered: Vec<&str> = history
                .iter()
                .filter(|entry| entry.from.as_deref() != Some(entry.to.as_str()))
                .map(|entry| entry.to.as_str())
                .collect();
            audit.twice += entered.len().saturating_sub(distinct(&entered)) as u64;
            if rt.verify(job.id).await.is_err() {
                audit.unverified += 1;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    audit.lost += expected.saturating_sub(audit.jobs);
    (audit.reruns, audit.after_disruption, audit.unexplained) = reruns(runs, disrupted)?;
    rt.shutdown().await?;
    Ok(audit)
}

fn distinct(states: &[&str]) -> usize {
    states.iter().collect::<HashSet<_>>().len()
}

/// Handler runs beyond one per step in the run log; of them, those in the
/// same process within half a lease of the run before, in a process of
/// `disrupted` and in any other. A step runs again only once the lease it
/// ran under has run out (its worker died, froze, or could not commit and
/// let the lease go): in another process, or in the same one once its lease
/// is seen out. Within half a lease, in a process nothing disrupted, no
/// lease expiry explains it.
fn reruns(runs: &Path, disrupted: &[u32]) -> Result<(u64, u64, u64), Error> {
    let log = match std::fs::read_to_string(runs) {
        Ok(log) => log,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(Error::Io(error)),
    };
    let mut by_step: HashMap<(&str, &str), Vec<(u32, u128)>> = HashMap::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if let [job, state, process, at] = fields[..] {
            let (process, at) = (process.parse().unwrap_or(0), at.parse().unwrap_or(0));
            by_step.entry((job, state)).or_default().push((process, at));
        }
    }
    let half_lease = LEASE.as_millis() / 2;
    let (mut reruns, mut after_disruption, mut unexplained) = (0, 0, 0);
    for runs in by_step.values_mut() {
        runs.sort_by_key(|&(_, at)| at);
        reruns += runs.len() as u64 - 1;
        for pair in runs.windows(2) {
            let ((first, at), (second, again)) = (pair[0], pair[1]);
            if first == second && again.saturating_sub(at) < half_lease {
                if disrupted.contains(&first) {
                    after_disruption += 1;
                } else {
                    unexplained += 1;
                }
            }
        }
    }
    Ok((reruns, after_disruption, unexplained))
}

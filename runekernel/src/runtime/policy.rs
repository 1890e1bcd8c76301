//! Default policies of a runtime: leases, heartbeats, timeouts, attempts,
//! backoff, retention.

use std::time::Duration;

/// Exponential backoff between attempts of a failing step:
/// `base * 2^(attempt - 1)`, capped at `max`, then spread by ±`jitter`
/// (a fraction) so that failing jobs do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first failed attempt. Default: 1 s.
    pub base: Duration,
    /// The longest delay. Default: 1 h.
    pub max: Duration,
    /// How much to spread each delay, from 0.0 (none) to 1.0. Default: 0.25.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (from 1), at
    /// `position` within the jitter's spread: 0.0 the shortest, 0.5 the
    /// unspread delay, 1.0 the longest (a runtime draws it uniformly from
    /// its own generator, seeded in deterministic mode). A position outside
    /// 0.0..=1.0 counts as the nearest end.
    ///
    /// ```
    /// use std::time::Duration;
    /// use runekernel::Backoff;
    ///
    /// let backoff = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(60), jitter: 0.5 };
    /// assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(4));
    /// assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(2));
    /// assert_eq!(backoff.delay(3, 1.0), Duration::from_secs(6));
    /// ```
    pub fn delay(&self, attempt: u32, position: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(40);
        let raw = self.base.saturating_mul(1u32 << exponent.min(31)).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let position = if position.is_nan() {
            0.5
        } else {
            position.clamp(0.0, 1.0)
        };
        if jitter == 0.0 {
            return raw;
        }
        let factor = 1.0 + jitter * (2.0 * position - 1.0);
        raw.mul_f64(factor).min(self.max)
    }
}

/// How long finished jobs are kept before the runtime deletes them with
/// their history: River's defaults, completed jobs for 24 hours, failed and
/// cancelled ones for 7 days. `None` keeps a state's jobs for good.
///
/// Pruning runs in the background of every runtime that has workers, but
/// only one runtime sharing a storage prunes at a time (it holds the
/// storage's `prune` duty, see `Storage::try_duty`), in batches of
/// [`batch`](Self::batch) jobs, so that it never holds storage for long.
///
/// ```
/// use std::time::Duration;
/// use runekernel::{Policies, Retention};
///
/// let mut policies = Policies::default();
/// policies.retention.completed = Some(Duration::from_secs(3600));
/// assert_eq!(policies.retention.failed, Some(Duration::from_secs(7 * 24 * 3600)));
/// policies.retention = Retention::keep_everything();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// How long completed jobs are kept. Default: 24 h.
    pub completed: Option<Duration>,
    /// How long failed jobs are kept. Default: 7 days.
    pub failed: Option<Duration>,
    /// How long cancelled jobs are kept. Default: 7 days.
    pub cancelled: Option<Duration>,
    /// How often the pruner looks for jobs to delete. Default: 1 min.
    pub interval: Duration,
    /// How many jobs one storage call deletes. Default: 1000.
    pub batch: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            completed: Some(Duration::from_secs(24 * 3600)),
            failed: Some(Duration::from_secs(7 * 24 * 3600)),
            cancelled: Some(Duration::from_secs(7 * 24 * 3600)),
            interval: Duration::from_secs(60),
            batch: 1000,
        }
    }
}

impl Retention {
    /// Keeps every finished job: no pruning.
    pub fn keep_everything() -> Self {
        Retention {
            completed: None,
            failed: None,
            cancelled: None,
            ..Retention::default()
        }
    }

    /// How long jobs in the finished lifecycle state `status` are kept;
    /// `None` for any other state.
    pub fn keep(&self, status: crate::JobState) -> Option<Duration> {
        match status {
            crate::JobState::Completed => self.completed,
            crate::JobState::Failed => self.failed,
            crate::JobState::Cancelled => self.cancelled,
            crate::JobState::Pending | crate::JobState::Running => None,
        }
    }

    /// Whether any finished job is ever deleted.
    pub fn prunes(&self) -> bool {
        crate::JobState::FINISHED.iter().any(|&s| self.keep(s).is_some())
    }
}

/// The limits a runtime applies where a job or state sets none. Start from
/// `Policies::default()` and set what differs (or use the
/// [`RuntimeBuilder`](crate::RuntimeBuilder) method of the same name):
///
/// ```
/// use std::time::Duration;
/// use runekernel::Policies;
///
/// let mut policies = Policies::default();
/// policies.lease = Duration::from_secs(60);
/// policies.prefetch = 32;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Policies {
    /// How long a claimed job stays leased without a heartbeat before another
    /// worker may take it over. Default: 30 s.
    ///
    /// A lease's expiry is a time on the clock of the worker that wrote it,
    /// read by the clock of the worker that claims next: clocks must agree
    /// to well within the lease less a heartbeat, or a worker whose clock
    /// runs ahead takes over jobs still running elsewhere (their late
    /// commits are refused, but the step runs twice).
    pub lease: Duration,
    /// How often the leases of the jobs a runtime holds (running, or
    /// waiting in line for a worker) are extended, all in one storage call.
    /// A failed heartbeat is retried four times as often; when none has
    /// succeeded for the lease less a heartbeat, no new step starts until
    /// one does. Default: 10 s.
    pub heartbeat: Duration,
    /// How long one step may run. Default: 5 min.
    pub step_timeout: Duration,
    /// Attempts per step before a job fails. Default: 5.
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// How long a cancelled step may still run before it is dropped.
    /// Default: 5 s.
    pub cancel_grace: Duration,
    /// How many jobs one claim asks for. Default: 64.
    pub claim_batch: usize,
    /// How many claimed jobs may wait in this process for a worker to free
    /// up, on top of one job per free worker. Default: 0 (a claim asks only
    /// for as many jobs as there are free workers).
    ///
    /// With short steps and a remote store, a worker can finish its job
    /// faster than a claim's round trip, so the workers wait on claims.
    /// Claiming ahead hides that round trip: while the waiting jobs run, the
    /// next claim is already on its way. The cost: a waiting job is leased to
    /// this process, so another process cannot run it meanwhile, and a
    /// higher-priority job submitted later may start after it. A waiting
    /// job's lease is extended by the [`heartbeat`](Self::heartbeat) as a
    /// running job's is, so it may wait any time; one whose lease was lost
    /// meanwhile is not started, and jobs still waiting at shutdown are
    /// handed back.
    pub prefetch: usize,
    /// How long an idle worker waits before looking for due jobs when no
    /// notification arrives (scheduled jobs, other processes). Default: 1 s.
    pub poll_interval: Duration,
    /// How many steps a worker runs for one job before handing it back to
    /// the queue, so long chains do not starve other jobs. Default: 100.
    pub max_steps_per_claim: u32,
    /// How long finished jobs are kept. Default: [`Retention::default`].
    pub retention: Retention,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            step_timeout: Duration::from_secs(300),
            max_attempts: 5,
            backoff: Backoff::default(),
            cancel_grace: Duration::from_secs(5),
            claim_batch: 64,
            prefetch: 0,
            poll_interval: Duration::from_secs(1),
            max_steps_per_claim: 100,
            retention: Retention::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=6).map(|a| b.delay(a, 0.9).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        let j = Backoff { jitter: 0.25, ..b };
        for step in 0..=100 {
            let d = j.delay(2, f64::from(step) / 100.0).as_millis();
            assert!((1500..=2500).contains(&d), "{d}");
        }
        assert_eq!(j.delay(2, -3.0).as_millis(), 1500);
        assert_eq!(j.delay(2, f64::NAN).as_millis(), 2000);
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(10));
    }
}

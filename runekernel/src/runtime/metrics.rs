//! Step metrics per machine: steps, failures, retries, and a latency
//! histogram, counted by a [`StepHook`]. The set of machines is fixed when the runtime is built, so the
//! hot path only touches atomics, and those are striped: each thread counts
//! in a stripe of its own, so the cores running steps do not pass one cache
//! line back and forth at every step. A snapshot sums the stripes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::hooks::{StepHook, StepInfo, StepOutcome};

/// Upper bounds of the step latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0];

/// Stripes per machine: more than the cores most runtimes run on.
const STRIPES: usize = 8;

/// One machine's counters.
#[derive(Default)]
pub(crate) struct MachineCounters {
    stripes: [Stripe; STRIPES],
}

/// One thread's share of a machine's counters, on cache lines of its own.
#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    steps: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_micros: AtomicU64,
}

/// This thread's stripe, handed out round-robin on first use.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

impl MachineCounters {
    /// Counts one step that took `latency` and ended as `outcome`.
    fn record(&self, latency: Duration, outcome: &StepOutcome<'_>) {
        self.stripes[stripe()].record(latency, outcome);
    }

    /// The sum over the stripes of one counter.
    fn sum(&self, counter: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes.iter().map(|s| counter(s).load(Ordering::Relaxed)).sum()
    }
}

impl Stripe {
    fn record(&self, latency: Duration, outcome: &StepOutcome<'_>) {
        self.steps.fetch_add(1, Ordering::Relaxed);
        match outcome {
            StepOutcome::Retrying { .. } => self.retries.fetch_add(1, Ordering::Relaxed),
            StepOutcome::Failed { .. } => self.failures.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let seconds = latency.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Counters for every registered machine.
#[derive(Default)]
pub(crate) struct Metrics {
    machines: foldhash::HashMap<String, MachineCounters>,
}

impl Metrics {
    pub(crate) fn new<'a>(machines: impl IntoIterator<Item = &'a String>) -> Self {
        Metrics {
            machines: machines
                .into_iter()
                .map(|m| (m.clone(), MachineCounters::default()))
                .collect(),
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<MachineMetrics> {
        let mut out: Vec<MachineMetrics> = self
            .machines
            .iter()
            .map(|(name, c)| MachineMetrics {
                machine: name.clone(),
                steps: c.sum(|s| &s.steps),
                failures: c.sum(|s| &s.failures),
                retries: c.sum(|s| &s.retries),
                latency_buckets: (0..LATENCY_BUCKETS.len()).map(|i| c.sum(|s| &s.buckets[i])).collect(),
                latency_sum: Duration::from_micros(c.sum(|s| &s.latency_micros)),
            })
            .collect();
        out.sort_by(|a, b| a.machine.cmp(&b.machine));
        out
    }
}

impl StepHook for Metrics {
    /// Counts every step that ends in a commit (a step whose lease was lost
    /// commits nothing and is run again elsewhere).
    fn after(&self, step: &StepInfo<'_>, outcome: &StepOutcome<'_>, elapsed: Duration) {
        if *outcome == StepOutcome::LeaseLost {
            return;
        }
        if let Some(counters) = self.machines.get(step.machine) {
            counters.record(elapsed, outcome);
        }
    }
}

/// A machine's step counts since the runtime started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineMetrics {
    /// The machine.
    pub machine: String,
    /// Steps run (every outcome).
    pub steps: u64,
    /// Steps that failed the job.
    pub failures: u64,
    /// Steps that failed and will be retried.
    pub retries: u64,
    /// How many steps took at most each of [`LATENCY_BUCKETS`] seconds (not
    /// cumulative; a step slower than the last bound is in none).
    pub latency_buckets: Vec<u64>,
    /// The total time of all steps.
    pub latency_sum: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sums_the_steps_every_thread_counted() {
        let metrics = Metrics::new(&["m".to_owned()]);
        std::thread::scope(|scope| {
            for _ in 0..STRIPES + 3 {
                scope.spawn(|| {
                    let step = StepInfo {
                        job: crate::storage::JobId::from_u128(1),
                        machine: "m",
                        state: "start",
                        attempt: 1,
                    };
                    metrics.after(&step, &StepOutcome::Advanced { to: "next" }, Duration::from_micros(500));
                    let retry = StepOutcome::Retrying { error: "e", run_at: 0 };
                    metrics.after(&step, &retry, Duration::from_millis(3));
                    metrics.after(&step, &StepOutcome::LeaseLost, Duration::from_millis(3));
                });
            }
        });
        let [m] = metrics.snapshot().try_into().unwrap();
        let threads = (STRIPES + 3) as u64;
        assert_eq!((m.steps, m.retries, m.failures), (2 * threads, threads, 0));
        assert_eq!(&m.latency_buckets[..3], &[threads, threads, 0]);
        assert_eq!(m.latency_sum, Duration::from_micros(3_500) * threads as u32);
    }
}

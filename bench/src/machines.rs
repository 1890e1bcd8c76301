//! The benchmark machines: a single no-op step, and three no-op steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use runekernel::prelude::*;

/// One step to done.
#[derive(StateMachine, Debug, Clone, PartialEq)]
pub enum Noop {
    /// Submitted.
    #[state(initial)]
    #[transition(to = Done)]
    Start { n: u64 },
    /// Done.
    #[state(terminal)]
    Done,
}

/// Three steps to done.
#[derive(StateMachine, Debug, Clone, PartialEq)]
pub enum Three {
    /// Submitted.
    #[state(initial)]
    #[transition(to = B)]
    A { n: u64 },
    /// Second.
    #[transition(to = C)]
    B { n: u64 },
    /// Third.
    #[transition(to = Done)]
    C { n: u64 },
    /// Done.
    #[state(terminal)]
    Done,
}

/// Counts the last step of every job it runs, so the harness knows when a
/// burn-down is over without scanning storage, and stamps when the latest one
/// ran, so a latency sample is read without spinning on a core that storage
/// needs. apalis's handler uses it too.
#[derive(Clone, Default)]
pub struct Counter(Arc<Counted>);

struct Counted {
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
    bumped: Notify,
    /// The count the harness waits for: only the bump that reaches it wakes
    /// the harness, so a burn-down's end is seen when it happens, without
    /// waking the harness at every job.
    wake_at: AtomicU64,
}

impl Default for Counted {
    fn default() -> Self {
        Counted {
            count: AtomicU64::new(0),
            last: Mutex::new(None),
            bumped: Notify::new(),
            wake_at: AtomicU64::new(u64::MAX),
        }
    }
}

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.count.load(Ordering::SeqCst)
    }

    pub fn bump(&self) {
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let count = self.0.count.fetch_add(1, Ordering::SeqCst) + 1;
        if count >= self.0.wake_at.load(Ordering::SeqCst) {
            self.0.bumped.notify_waiters();
        }
    }

    /// Waits until the count reaches `n` or `deadline` passes; returns
    /// whether it reached `n`. One waiter at a time.
    pub async fn reached(&self, n: u64, deadline: tokio::time::Instant) -> bool {
        self.0.wake_at.store(n, Ordering::SeqCst);
        loop {
            let bumped = self.0.bumped.notified();
            tokio::pin!(bumped);
            bumped.as_mut().enable();
            if self.get() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, bumped).await.is_err() {
                return self.get() >= n;
            }
        }
    }

    /// Waits until the count passes `before`, for at most `limit`; returns
    /// when the last step that passed it ran.
    pub async fn ran_after(&self, before: u64, limit: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + limit;
        if !self.reached(before + 1, deadline).await {
            return None;
        }
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl NoopHandler for Counter {
    async fn start(&self, _ctx: &JobContext, _n: u64) -> Result<NoopStartNext, StepError> {
        self.bump();
        Ok(NoopStartNext::Done)
    }
}

impl ThreeHandler for Counter {
    async fn a(&self, _ctx: &JobContext, n: u64) -> Result<ThreeANext, StepError> {
        Ok(ThreeANext::B { n })
    }

    async fn b(&self, _ctx: &JobContext, n: u64) -> Result<ThreeBNext, StepError> {
        Ok(ThreeBNext::C { n })
    }

    async fn c(&self, _ctx: &JobContext, _n: u64) -> Result<ThreeCNext, StepError> {
        self.bump();
        Ok(ThreeCNext::Done)
    }
}

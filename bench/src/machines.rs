//! The benchmark machines: a single no-op step, and three no-op steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
/// burn-down is over without scanning storage.
#[derive(Clone, Default)]
pub struct Counter(pub Arc<AtomicU64>);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
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

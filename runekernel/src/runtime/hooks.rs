//! [`StepHook`]: code the runtime calls around every step it runs, as
//! River's hooks and Temporal's interceptors are. A hook sees each step
//! start (and may open a span the step then runs in) and sees how it ended,
//! before the outcome is committed. The runtime's own `step` span and its
//! step metrics are hooks too, installed ahead of the builder's.
//!
//! Hooks run on the worker, in the step's path: they must be quick and must
//! not block. One that panics is logged and skipped; the step goes on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tracing::Span;

use crate::storage::{JobId, Millis};

/// The step a hook is called for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct StepInfo<'a> {
    /// The job.
    pub job: JobId,
    /// Its machine's name.
    pub machine: &'a str,
    /// The state whose handler runs (its stored name).
    pub state: &'a str,
    /// The attempt at this state, from 1.
    pub attempt: u32,
}

/// How a step ended, as the runtime is about to commit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome<'a> {
    /// The job moved to `to`, a state that is not terminal.
    Advanced {
        /// The new state's stored name.
        to: &'a str,
    },
    /// The job reached `to`, a terminal state.
    Completed {
        /// The terminal state's stored name.
        to: &'a str,
    },
    /// The step failed and the job will try the same state again.
    Retrying {
        /// Why the step failed.
        error: &'a str,
        /// When the next attempt may start, in milliseconds since the
        /// Unix epoch.
        run_at: Millis,
    },
    /// The handler asked to run the same state again later, without
    /// using up an attempt ([`StepError::snooze`](crate::StepError::snooze)).
    Snoozed {
        /// When it runs again, in milliseconds since the Unix epoch.
        run_at: Millis,
    },
    /// The job failed for good.
    Failed {
        /// Why.
        error: &'a str,
    },
    /// The job was cancelled.
    Cancelled,
    /// The worker lost the job's lease: nothing is committed, and whichever
    /// worker holds the job now runs the step again.
    LeaseLost,
}

/// Code the runtime calls around every step. Both methods have defaults
/// that do nothing, so a hook implements only what it needs.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use runekernel::{Runtime, StepHook, StepInfo, StepOutcome};
///
/// /// Counts the steps that failed for good.
/// #[derive(Default)]
/// struct CountFailures(AtomicU64);
///
/// impl StepHook for CountFailures {
///     fn after(&self, _step: &StepInfo<'_>, outcome: &StepOutcome<'_>, _elapsed: Duration) {
///         if matches!(outcome, StepOutcome::Failed { .. }) {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
///
/// # async fn build() -> Result<(), runekernel::RuntimeError> {
/// let runtime = Runtime::builder().hook(CountFailures::default()).build().await?;
/// # runtime.shutdown().await
/// # }
/// ```
pub trait StepHook: Send + Sync + 'static {
    /// Called as a step starts. The span returned wraps the step: the
    /// handler runs inside it, so what it logs carries the span's fields.
    /// The default opens none.
    fn before(&self, step: &StepInfo<'_>) -> Span {
        let _ = step;
        Span::none()
    }

    /// Called once the step's outcome is known, before it is committed;
    /// `elapsed` is how long the step took.
    fn after(&self, step: &StepInfo<'_>, outcome: &StepOutcome<'_>, elapsed: Duration) {
        let _ = (step, outcome, elapsed);
    }
}

/// The runtime's `step` span, at level `info`, with the job's id,
/// machine, state and attempt.
pub(crate) struct StepSpan;

impl StepHook for StepSpan {
    fn before(&self, step: &StepInfo<'_>) -> Span {
        tracing::info_span!(
            "step",
            job = %step.job,
            machine = %step.machine,
            state = %step.state,
            attempt = step.attempt
        )
    }
}

/// The hooks a runtime calls, in order.
#[derive(Clone, Default)]
pub(crate) struct Hooks(Vec<Arc<dyn StepHook>>);

impl Hooks {
    /// Adds `hook` after the others.
    pub(crate) fn push(&mut self, hook: Arc<dyn StepHook>) {
        self.0.push(hook);
    }

    /// Calls every hook's `before`; returns the spans they opened, in
    /// order (no allocation when none did).
    pub(crate) fn before(&self, step: &StepInfo<'_>) -> Vec<Span> {
        let mut spans = Vec::new();
        for hook in &self.0 {
            match catch_unwind(AssertUnwindSafe(|| hook.before(step))) {
                Ok(span) if !span.is_disabled() => spans.push(span),
                Ok(_) => {}
                Err(_) => tracing::error!(job = %step.job, "a step hook panicked before the step"),
            }
        }
        spans
    }

    /// Calls every hook's `after`.
    pub(crate) fn after(&self, step: &StepInfo<'_>, outcome: &StepOutcome<'_>, elapsed: Duration) {
        for hook in &self.0 {
            if catch_unwind(AssertUnwindSafe(|| hook.after(step, outcome, elapsed))).is_err() {
                tracing::error!(job = %step.job, "a step hook panicked after the step");
            }
        }
    }
}

/// Runs `step` inside `spans`, the first outermost: each is entered for
/// every poll, as [`tracing::Instrument`] does for one.
pub(crate) async fn in_spans<F: std::future::Future>(spans: &[Span], step: F) -> F::Output {
    let mut step = std::pin::pin!(step);
    std::future::poll_fn(|cx| in_scope(spans, || step.as_mut().poll(cx))).await
}

/// Calls `f` with every span of `spans` entered.
pub(crate) fn in_scope<T>(spans: &[Span], f: impl FnOnce() -> T) -> T {
    match spans.split_first() {
        Some((span, rest)) => span.in_scope(move || in_scope(rest, f)),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Panics;

    impl StepHook for Panics {
        fn before(&self, _step: &StepInfo<'_>) -> Span {
            panic!("before")
        }

        fn after(&self, _step: &StepInfo<'_>, _outcome: &StepOutcome<'_>, _elapsed: Duration) {
            panic!("after")
        }
    }

    #[derive(Default)]
    struct Records(Mutex<Vec<String>>);

    impl StepHook for Records {
        fn after(&self, step: &StepInfo<'_>, outcome: &StepOutcome<'_>, _elapsed: Duration) {
            self.0.lock().unwrap().push(format!("{} {outcome:?}", step.state));
        }
    }

    #[test]
    fn a_hook_that_panics_does_not_stop_the_others() {
        let records = Arc::new(Records::default());
        let mut hooks = Hooks::default();
        hooks.push(Arc::new(Panics));
        hooks.push(Arc::clone(&records) as Arc<dyn StepHook>);
        let step = StepInfo {
            job: JobId::from_u128(1),
            machine: "m",
            state: "start",
            attempt: 1,
        };
        assert!(hooks.before(&step).is_empty());
        hooks.after(&step, &StepOutcome::Completed { to: "done" }, Duration::ZERO);
        assert_eq!(*records.0.lock().unwrap(), ["start Completed { to: \"done\" }"]);
    }
}

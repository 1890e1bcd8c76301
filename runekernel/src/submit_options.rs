//! [`SubmitOptions`]: how to submit a job, typed or untyped.

use std::time::{Duration, SystemTime};

/// How to submit a job. Every field is optional; `Default` gives the
/// runtime's defaults.
///
/// ```
/// use runekernel::SubmitOptions;
/// use std::time::Duration;
///
/// let options = SubmitOptions {
///     priority: -1,
///     delay: Some(Duration::from_secs(60)),
///     idempotency_key: Some("order-42".into()),
///     ..SubmitOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Lower runs first; default 0.
    pub priority: i32,
    /// Run no sooner than this long from now.
    pub delay: Option<Duration>,
    /// Run no sooner than this time (takes precedence over `delay`).
    pub run_at: Option<SystemTime>,
    /// Attempts per step, unless the state sets its own
    /// (`#[state(max_attempts = N)]`); default: the runtime's.
    pub max_attempts: Option<u32>,
    /// Step timeout, unless the state sets its own
    /// (`#[state(timeout_ms = N)]`); default: the runtime's.
    pub timeout: Option<Duration>,
    /// At most one job per key: submitting again returns the first job's id.
    pub idempotency_key: Option<String>,
    /// The queue the job waits in; default: its machine's
    /// (`#[machine(queue = "...")]`, else `"default"`). Only runtimes that
    /// serve that queue claim it (see
    /// [`RuntimeBuilder::queue`](crate::RuntimeBuilder::queue)).
    pub queue: Option<String>,
    /// Who asks for the job, recorded as the worker of its submission entry
    /// in history (the admin API names the caller's token here); default:
    /// nobody named.
    pub submitted_by: Option<String>,
}

//! [`StepError`]: how a handler step fails, and what the runtime does next.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// What the runtime does with a failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepErrorKind {
    /// Try again later: attempt + 1, back to `Pending` with exponential
    /// backoff and jitter; `Failed` once the attempts are spent.
    Retry,
    /// Give up: the job is `Failed` at once.
    Fatal,
    /// Not now: back to `Pending` after the duration, no attempt spent.
    Snooze(Duration),
}

/// The error a handler step returns.
///
/// `?` on any `std::error::Error` gives a [`StepError::retry`]. Like
/// `anyhow::Error`, `StepError` does not itself implement `std::error::Error`
/// (that is what makes the blanket `From` possible); its [`Display`](fmt::Display)
/// is the stored reason.
///
/// ```
/// use runekernel::{StepError, StepErrorKind};
/// use std::time::Duration;
///
/// fn parse(input: &str) -> Result<u32, StepError> {
///     Ok(input.parse::<u32>()?) // a ParseIntError becomes a retry
/// }
/// assert_eq!(parse("x").unwrap_err().kind(), StepErrorKind::Retry);
/// assert_eq!(StepError::fatal("card declined").to_string(), "card declined");
/// assert_eq!(
///     StepError::snooze(Duration::from_secs(5)).kind(),
///     StepErrorKind::Snooze(Duration::from_secs(5))
/// );
/// ```
pub struct StepError {
    kind: StepErrorKind,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl StepError {
    /// A failure worth retrying.
    pub fn retry(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StepError {
            kind: StepErrorKind::Retry,
            source: Some(error.into()),
        }
    }

    /// A failure that no retry will fix.
    pub fn fatal(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StepError {
            kind: StepErrorKind::Fatal,
            source: Some(error.into()),
        }
    }

    /// Not a failure: run this step again after `delay`, without spending an
    /// attempt.
    pub fn snooze(delay: Duration) -> Self {
        StepError {
            kind: StepErrorKind::Snooze(delay),
            source: None,
        }
    }

    /// What the runtime will do.
    pub fn kind(&self) -> StepErrorKind {
        self.kind
    }

    /// The underlying error, if any.
    pub fn source(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for StepError {
    fn from(error: E) -> Self {
        StepError::retry(error)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.kind) {
            (Some(source), _) => fmt::Display::fmt(source, f),
            (None, StepErrorKind::Snooze(d)) => write!(f, "snoozed for {} ms", d.as_millis()),
            (None, _) => f.write_str("step failed"),
        }
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

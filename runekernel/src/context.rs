//! [`JobContext`]: what a handler step knows about its job and its runtime.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::signal::Signal;
use crate::step_error::StepError;
use crate::storage::JobId;

/// Typed shared values registered on the runtime builder
/// (`Runtime::builder().resource(pool)`), reachable from every step.
#[derive(Clone, Default)]
pub struct Resources {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Resources {
    /// Adds (or replaces) the value of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was registered.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources").field("count", &self.map.len()).finish()
    }
}

/// The context of one step: the job's id, which attempt this is, the
/// runtime's clock, a cancellation signal and the shared resources.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    job_id: JobId,
    attempt: u32,
    now: SystemTime,
    cancel: Signal,
    resources: Arc<Resources>,
}

impl JobContext {
    pub(crate) fn new(job_id: JobId, attempt: u32, now: SystemTime, cancel: Signal, resources: Arc<Resources>) -> Self {
        JobContext {
            inner: Arc::new(ContextInner {
                job_id,
                attempt,
                now,
                cancel,
                resources,
            }),
        }
    }

    /// This context, for the job's next step (`attempt`, starting at
    /// `now`): changed in place when no earlier step kept a clone of it (the
    /// usual case), so a job's steps share one allocation; otherwise a new
    /// one, leaving the kept clone as it was.
    pub(crate) fn renew(&mut self, attempt: u32, now: SystemTime) {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.attempt = attempt;
                inner.now = now;
            }
            None => {
                let (cancel, resources) = (self.inner.cancel.clone(), Arc::clone(&self.inner.resources));
                *self = JobContext::new(self.inner.job_id, attempt, now, cancel, resources);
            }
        }
    }

    /// A context outside any runtime, for calling handler methods directly
    /// in unit tests: attempt 1, the system clock, never cancelled, no
    /// resources.
    pub fn detached(job_id: JobId) -> Self {
        Self::new(job_id, 1, SystemTime::now(), Signal::new(), Arc::default())
    }

    /// The job this step runs for.
    pub fn job_id(&self) -> JobId {
        self.inner.job_id
    }

    /// Which attempt of this step this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The runtime's time when the step started: when its job was claimed
    /// or its previous step committed, a moment before the handler was
    /// called (the manual clock in deterministic mode).
    pub fn now(&self) -> SystemTime {
        self.inner.now
    }

    /// Resolves once the job is cancelled; `select!` on it to stop early.
    pub async fn cancelled(&self) {
        self.inner.cancel.raised().await;
    }

    /// Whether the job has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_raised()
    }

    /// The shared resource of type `T`.
    ///
    /// # Errors
    /// A fatal [`StepError`] naming the type when none was registered, so
    /// `ctx.resource::<Db>()?` fails the job with a clear reason.
    pub fn resource<T: Send + Sync + 'static>(&self) -> Result<&T, StepError> {
        self.inner.resources.get::<T>().ok_or_else(|| {
            StepError::fatal(format!(
                "no resource of type `{}` is registered; add it with Runtime::builder().resource(..)",
                type_name::<T>()
            ))
        })
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("job_id", &self.inner.job_id)
            .field("attempt", &self.inner.attempt)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renewing_a_context_changes_it_in_place_unless_a_step_kept_a_clone() {
        let start = SystemTime::UNIX_EPOCH;
        let mut ctx = JobContext::new(JobId::new(), 1, start, Signal::new(), Arc::default());
        let shared = Arc::as_ptr(&ctx.inner);
        ctx.renew(2, start + Duration::from_secs(1));
        assert_eq!(Arc::as_ptr(&ctx.inner), shared, "no clone was kept: same allocation");
        assert_eq!((ctx.attempt(), ctx.now()), (2, start + Duration::from_secs(1)));

        let kept = ctx.clone();
        ctx.renew(3, start + Duration::from_secs(2));
        assert_eq!((ctx.attempt(), ctx.now()), (3, start + Duration::from_secs(2)));
        assert_eq!(
            (kept.attempt(), kept.now()),
            (2, start + Duration::from_secs(1)),
            "the kept clone is left as it was"
        );
        assert_eq!(ctx.job_id(), kept.job_id());
    }
}

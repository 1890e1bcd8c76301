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

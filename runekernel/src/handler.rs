//! [`Handler`]: the step function of one machine, as the runtime registers it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::JobContext;
use crate::machine::StateMachine;
use crate::step_error::StepError;

type StepFn<M> = dyn Fn(M, JobContext) -> BoxFuture<'static, Result<M, StepError>> + Send + Sync;

/// Runs one step of a job of machine `M`: takes the current state and
/// returns the next.
///
/// A derived machine makes one from its handler trait with
/// `<Enum>::handler(impl <Enum>Handler)`; a hand-written machine uses
/// [`Handler::new`] with a closure. The runtime checks every returned state
/// against the machine's transitions (guards included) before committing it.
pub struct Handler<M> {
    step: Arc<StepFn<M>>,
}

impl<M: StateMachine> Handler<M> {
    /// A handler from an async step function.
    pub fn new<F, Fut>(step: F) -> Self
    where
        F: Fn(M, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M, StepError>> + Send + 'static,
    {
        Handler {
            step: Arc::new(move |state, ctx| Box::pin(step(state, ctx))),
        }
    }

    /// Runs one step.
    pub fn run(&self, state: M, ctx: JobContext) -> BoxFuture<'static, Result<M, StepError>> {
        (self.step)(state, ctx)
    }
}

impl<M> Clone for Handler<M> {
    fn clone(&self) -> Self {
        Handler {
            step: Arc::clone(&self.step),
        }
    }
}

impl<M: StateMachine> fmt::Debug for Handler<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler").field("machine", &M::NAME).finish()
    }
}

//! [`Handler`]: the step function of one machine, as the runtime registers it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::JobContext;
use crate::machine::checked::TransitionCheck;
use crate::machine::StateMachine;
use crate::step_error::StepError;
use crate::storage::StateChange;

/// A step function, type-erased. Two ways to call it: as [`Handler::run`]
/// does, and as the runtime does, with the checks that follow every step
/// in the same future, so a step costs one allocation, not two.
trait StepFn<M>: Send + Sync {
    /// The step alone, as [`Handler::run`] returns it.
    fn call(&self, state: M, ctx: JobContext) -> BoxFuture<'static, Result<M, StepError>>;

    /// The step, then `check`'s checks on the state it returns. The handler
    /// is called when the future is first polled, so a panic in it is the
    /// future's (and the runtime catches it there). The future borrows the
    /// function, for the reason `ErasedMachine::step` (in
    /// `runtime/registry.rs`) gives.
    fn call_checked<'a>(
        &'a self,
        state: M,
        ctx: JobContext,
        check: TransitionCheck,
    ) -> BoxFuture<'a, Result<StateChange, StepError>>;
}

impl<M, F, Fut> StepFn<M> for F
where
    M: StateMachine,
    F: Fn(M, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<M, StepError>> + Send + 'static,
{
    fn call(&self, state: M, ctx: JobContext) -> BoxFuture<'static, Result<M, StepError>> {
        Box::pin(self(state, ctx))
    }

    fn call_checked<'a>(
        &'a self,
        state: M,
        ctx: JobContext,
        check: TransitionCheck,
    ) -> BoxFuture<'a, Result<StateChange, StepError>> {
        Box::pin(async move {
            let next = self(state, ctx).await?;
            check.check::<M>(next)
        })
    }
}

/// Runs one step of a job of machine `M`: takes the current state and
/// returns the next.
///
/// A derived machine makes one from its handler trait with
/// `<Enum>::handler(impl <Enum>Handler)`; a hand-written machine uses
/// [`Handler::new`] with a closure. The runtime checks every returned state
/// against the machine's transitions (guards included) before committing it.
pub struct Handler<M> {
    step: Arc<dyn StepFn<M>>,
}

impl<M: StateMachine> Handler<M> {
    /// A handler from an async step function.
    pub fn new<F, Fut>(step: F) -> Self
    where
        F: Fn(M, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M, StepError>> + Send + 'static,
    {
        Handler { step: Arc::new(step) }
    }

    /// Runs one step.
    pub fn run(&self, state: M, ctx: JobContext) -> BoxFuture<'static, Result<M, StepError>> {
        self.step.call(state, ctx)
    }

    /// Runs one step and checks the state it returns (see `TransitionCheck`),
    /// yielding it stored.
    pub(crate) fn run_checked(
        &self,
        state: M,
        ctx: JobContext,
        check: TransitionCheck,
    ) -> BoxFuture<'_, Result<StateChange, StepError>> {
        self.step.call_checked(state, ctx, check)
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

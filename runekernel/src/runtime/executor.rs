//! Runs the steps of one claimed job and classifies each outcome into the
//! commit that records it (River's job executor).
//!
//! One step: call the handler method of the current state under a timeout,
//! catching panics, watching for cancellation and for a lost lease; then one
//! compare-and-set commit. A non-terminal next state is committed as still
//! `Running` and the next step starts at once, under the same lease.
//!
//! A worker slot is held while a step runs and given back while its commit
//! waits on storage: the producer claims and starts the next jobs while
//! commits are in flight, so claiming, running and committing overlap.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::context::JobContext;
use crate::step_error::{StepError, StepErrorKind};
use crate::storage::{Commit, JobRecord, JobState, Outcome, StateChange, StorageError};

use super::clock::{millis, system_time};
use super::hooks::{in_scope, in_spans, StepInfo, StepOutcome};
use super::lease::ActiveJob;
use super::slots::WorkerSlot;
use super::Inner;
use crate::registration::ErasedMachine;

/// How one step ended.
enum StepResult {
    /// The handler returned a legal next state.
    Moved(StateChange),
    /// The handler returned an error.
    Failed(StepError),
    /// The handler panicked.
    Panicked(String),
    /// The step ran out of time.
    TimedOut(Duration),
    /// The job was cancelled while the step ran.
    Cancelled,
    /// The lease was lost: another worker may hold the job now.
    LeaseLost,
    /// The stored state cannot be decoded by the registered machine.
    Undecodable(String),
}

/// Runs the claimed job's steps while this worker holds it, in `slot` if the
/// producer gave one (direct runs have none), which it leaves held or given
/// back. Returns the job as last committed (or as claimed, if nothing was
/// committed).
pub(crate) async fn run_claimed(rt: &Arc<Inner>, mut job: JobRecord, slot: &mut Option<WorkerSlot>) -> JobRecord {
    let Some(lease) = job.lease.as_ref().map(|l| l.token) else {
        return job;
    };
    let Some(machine) = rt.registry.get(&job.machine) else {
        // Claims only ask for registered machines; hand it back regardless.
        let _ = rt.storage.release(job.id, lease, rt.clock.now()).await;
        return job;
    };
    let active = rt.active.insert(job.id, lease);
    let mut steps = 0u32;
    // The job's steps share one context, renewed before each.
    let mut context: Option<JobContext> = None;
    loop {
        // A step costs a unit of the task's cooperative budget, as a channel
        // receive does: an executor that goes from step to step and job to
        // job without waiting on anything (the in-memory store never makes
        // it wait) still lets the other tasks of its thread run.
        tokio::task::consume_budget().await;
        let info = StepInfo {
            job: job.id,
            machine: &job.machine,
            state: &job.state,
            attempt: job.attempts,
        };
        let spans = rt.hooks.before(&info);
        let started = std::time::Instant::now();
        let outcome = match in_scope(&spans, || precheck(rt, machine.as_ref(), &job, &active)) {
            Some(outcome) => outcome,
            None => {
                // The step takes the payload; the commit brings the next
                // one back.
                let payload = std::mem::take(&mut job.payload);
                let ctx = step_context(rt, &job, &active, &mut context);
                in_spans(&spans, run_step(rt, machine.as_ref(), &job, payload, ctx, &active)).await
            }
        };
        let elapsed = started.elapsed();
        steps += 1;
        // A cancellation signalled by a heartbeat's answer, or by a cancel
        // made through this runtime, records the reason stored with it.
        let cancel_reason = match &job.cancel_reason {
            Some(reason) => Some(reason.clone()),
            None if active.cancel.is_raised() && !matches!(outcome, StepResult::LeaseLost) => {
                stored_cancel_reason(rt, &job).await
            }
            None => None,
        };
        let step = Step {
            result: outcome,
            steps,
            cancel_reason,
        };
        let settled = in_scope(&spans, || classify(rt, machine.as_ref(), &job, step, &active));
        rt.hooks.after(&info, &settled.outcome(), elapsed);
        drop(spans);
        let Settled::Commit(commit) = settled else {
            break;
        };
        match commit_in(rt, commit, &mut job, slot).await {
            Ok(waited) => {
                if job.status == JobState::Pending {
                    rt.wake_at(&job.queue, job.run_at);
                }
                if job.status != JobState::Running || !WorkerSlot::reacquire(slot).await {
                    break;
                }
                // A commit that had to wait may have been written after the
                // lease it gave the job ran out, or the lease may have run
                // out while this step waited for its slot (the process was
                // frozen, the database slow to answer): the next step would
                // run under a lease another worker may take over, so it does
                // not start, and the job is claimed again.
                if waited && job.lease.as_ref().is_none_or(|l| l.expires_at <= rt.clock.now()) {
                    tracing::warn!(job = %job.id, "the lease ran out before the next step could start; leaving the job");
                    break;
                }
            }
            Err(error) if error.is_conflict() => {
                tracing::warn!(job = %job.id, %error, "commit lost a race; another worker has the job");
                break;
            }
            Err(error) => {
                // The lease runs out and the job is reclaimed and retried.
                tracing::error!(job = %job.id, %error, "commit failed; the job will be reclaimed");
                break;
            }
        }
    }
    job
}

/// Writes `commit` and leaves the job after in `job`; returns whether it
/// had to wait. A commit that storage finishes at once (the in-memory
/// store's) keeps the worker slot; one that has to wait gives it back while
/// it waits, so the producer can start other jobs meanwhile. A slot given
/// back and taken again costs a wake-up of whichever task waits for it, and
/// likely a wait for this one: at every step, for nothing, if the commit
/// never had to wait.
async fn commit_in(
    rt: &Inner,
    commit: Commit,
    job: &mut JobRecord,
    slot: &mut Option<WorkerSlot>,
) -> Result<bool, StorageError> {
    let mut written = std::pin::pin!(rt.commit_into(commit, job));
    if let Poll::Ready(result) = futures::poll!(written.as_mut()) {
        return result.map(|()| false);
    }
    WorkerSlot::release(slot);
    written.await.map(|()| true)
}

/// The reason stored with the request to cancel `job`, if any. A failed
/// read leaves the reason out; the job is cancelled all the same.
async fn stored_cancel_reason(rt: &Inner, job: &JobRecord) -> Option<String> {
    match rt.storage.get(job.id).await {
        Ok(stored) => stored.and_then(|stored| stored.cancel_reason),
        Err(error) => {
            tracing::warn!(job = %job.id, %error, "cannot read why the job is cancelled; cancelling it without a reason");
            None
        }
    }
}

/// What to do without running the handler: leave a job whose lease was
/// lost, give up on a job that keeps crashing its workers, or honour a
/// cancellation that came first.
fn precheck(rt: &Inner, machine: &dyn ErasedMachine, job: &JobRecord, active: &ActiveJob) -> Option<StepResult> {
    // Lost while the job waited in line for a worker: another worker may
    // have it now.
    if active.lost.is_raised() {
        return Some(StepResult::LeaseLost);
    }
    // The lease may run out during the step: leave the job to whichever
    // worker claims it once it has.
    if rt.lease_health.at_risk() {
        tracing::warn!(job = %job.id, "leases cannot be extended; not starting the step");
        return Some(StepResult::LeaseLost);
    }
    if job.cancel_requested || active.cancel.is_raised() {
        return Some(StepResult::Cancelled);
    }
    let max = max_attempts(rt, machine, job);
    if job.attempts > max {
        return Some(StepResult::Failed(StepError::fatal(format!(
            "the step was started {} times without finishing (its worker stopped or its lease expired); \
             giving up after {max} attempts",
            job.attempts
        ))));
    }
    None
}

fn max_attempts(rt: &Inner, machine: &dyn ErasedMachine, job: &JobRecord) -> u32 {
    machine
        .definition()
        .state(&job.state)
        .and_then(|s| s.max_attempts)
        .unwrap_or(if job.max_attempts == 0 {
            rt.policies.max_attempts
        } else {
            job.max_attempts
        })
}

fn step_timeout(rt: &Inner, machine: &dyn ErasedMachine, job: &JobRecord) -> Duration {
    machine
        .definition()
        .state(&job.state)
        .and_then(|s| s.timeout)
        .or(job.timeout_ms.map(Duration::from_millis))
        .unwrap_or(rt.policies.step_timeout)
}

/// The context of the job's next step: `context` renewed, or made for its
/// first step.
fn step_context(rt: &Inner, job: &JobRecord, active: &ActiveJob, context: &mut Option<JobContext>) -> JobContext {
    // The step starts as soon as the job is claimed or its previous step
    // committed, when the runtime's clock was read last: no need to read it
    // again.
    let now = system_time(job.updated_at);
    match context {
        Some(ctx) => {
            ctx.renew(job.attempts, now);
            ctx.clone()
        }
        None => context
            .insert(JobContext::new(
                job.id,
                job.attempts,
                now,
                active.cancel.clone(),
                Arc::clone(&rt.resources),
            ))
            .clone(),
    }
}

/// Calls the handler under its timeout, catching panics and watching the
/// cancel and lost signals.
async fn run_step(
    rt: &Inner,
    machine: &dyn ErasedMachine,
    job: &JobRecord,
    payload: serde_json::Value,
    ctx: JobContext,
    active: &ActiveJob,
) -> StepResult {
    let step: BoxFuture<'_, _> = match machine.step(&job.state, payload, ctx) {
        Ok(step) => step,
        Err(error) => {
            let def = machine.definition();
            return StepResult::Undecodable(format!(
                "job {} of the `{}` machine cannot be read by the registered definition (stored with fingerprint \
                 {:016x}, registered definition has {}): {error}",
                job.id,
                def.name(),
                job.fingerprint,
                def.fingerprint()
            ));
        }
    };
    let timeout = step_timeout(rt, machine, job);
    let mut step = std::pin::pin!(AssertUnwindSafe(step).catch_unwind());
    tokio::select! {
        // The step first: one that finishes when first polled (most do)
        // never arms the timer or registers with the two signals, and a
        // step that finished wins over a timeout or signal that came with it.
        biased;
        result = &mut step => settle(result),
        () = rt.clock.sleep(timeout) => StepResult::TimedOut(timeout),
        () = active.lost.raised() => StepResult::LeaseLost,
        () = active.cancel.raised() => {
            // Give the step its grace period to wind down, then drop it.
            tokio::select! {
                _ = &mut step => {}
                () = rt.clock.sleep(rt.policies.cancel_grace) => {}
            }
            StepResult::Cancelled
        }
    }
}

fn settle(result: std::thread::Result<Result<StateChange, StepError>>) -> StepResult {
    match result {
        Ok(Ok(next)) => StepResult::Moved(next),
        Ok(Err(error)) => StepResult::Failed(error),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            StepResult::Panicked(message)
        }
    }
}

/// What a step's outcome commits.
enum Settled {
    /// Commit this.
    Commit(Commit),
    /// Nothing may be committed: the lease is lost.
    LeaseLost,
}

impl Settled {
    /// The outcome as hooks see it, read from the commit that records it.
    fn outcome(&self) -> StepOutcome<'_> {
        let Settled::Commit(commit) = self else {
            return StepOutcome::LeaseLost;
        };
        match &commit.outcome {
            Outcome::Continued { to, .. } | Outcome::Advanced { to, .. } => StepOutcome::Advanced { to: &to.state },
            Outcome::Completed { to } => StepOutcome::Completed { to: &to.state },
            Outcome::Retrying { run_at, error } => StepOutcome::Retrying { error, run_at: *run_at },
            Outcome::Snoozed { run_at } => StepOutcome::Snoozed { run_at: *run_at },
            Outcome::Failed { error } => StepOutcome::Failed { error },
            // A step commits none of the other outcomes (an operator's
            // reopening of a job, say).
            _ => StepOutcome::Cancelled,
        }
    }
}

/// A step as [`classify`] judges it.
struct Step {
    /// How it ended.
    result: StepResult,
    /// How many steps this claim has run, this one included.
    steps: u32,
    /// The reason a cancellation records, if one was given.
    cancel_reason: Option<String>,
}

/// The commit that records a step's result.
fn classify(rt: &Inner, machine: &dyn ErasedMachine, job: &JobRecord, step: Step, active: &ActiveJob) -> Settled {
    let Step {
        result,
        steps,
        cancel_reason,
    } = step;
    let now = rt.clock.now();
    let commit =
        |outcome: Outcome| Settled::Commit(Commit::held(job, active.lease, rt.worker_id.as_str(), now, outcome));
    let failed = |error: String| {
        tracing::warn!(job = %job.id, %error, "job failed");
        commit(Outcome::Failed { error })
    };
    let retry = |reason: String| {
        let max = max_attempts(rt, machine, job);
        if job.attempts >= max {
            failed(format!("{reason} (gave up after {} of {max} attempts)", job.attempts))
        } else {
            tracing::info!(job = %job.id, error = %reason, "step failed; will retry");
            let delay = rt.backoff_delay(job.attempts);
            commit(Outcome::Retrying {
                run_at: now.saturating_add(millis(delay)),
                error: reason,
            })
        }
    };
    // Once cancellation is signalled the job ends cancelled, whatever the
    // step did meanwhile (it may well have stopped *because* of it).
    let cancelled = active.cancel.is_raised();
    let result = match result {
        StepResult::LeaseLost => StepResult::LeaseLost,
        _ if cancelled => StepResult::Cancelled,
        other => other,
    };
    match result {
        StepResult::LeaseLost => Settled::LeaseLost,
        StepResult::Moved(to) => match super::check_depth(machine.definition().name(), &to.state, &to.payload) {
            // Stored, it would never be read again: the job fails instead,
            // its last readable state kept.
            Err(error) => failed(error.to_string()),
            Ok(()) => {
                let terminal = machine.definition().state(&to.state).is_some_and(|s| s.terminal);
                // (Not cancelled, or the result would be `Cancelled`.)
                let go_on = !terminal && steps < rt.policies.max_steps_per_claim && !rt.stopping.is_raised();
                commit(if terminal {
                    Outcome::Completed { to }
                } else if go_on {
                    Outcome::Continued {
                        to,
                        lease_until: now.saturating_add(millis(rt.policies.lease)),
                    }
                } else {
                    Outcome::Advanced { to, run_at: now }
                })
            }
        },
        StepResult::Failed(error) => match error.kind() {
            StepErrorKind::Retry => retry(error.to_string()),
            StepErrorKind::Fatal => failed(error.to_string()),
            StepErrorKind::Snooze(delay) => commit(Outcome::Snoozed {
                run_at: now.saturating_add(millis(delay)),
            }),
        },
        StepResult::Panicked(message) => retry(format!("the handler panicked: {message}")),
        StepResult::TimedOut(timeout) => retry(format!("the step timed out after {} ms", timeout.as_millis())),
        StepResult::Cancelled => commit(Outcome::Cancelled {
            reason: cancel_reason.unwrap_or_else(|| "cancelled".to_owned()),
        }),
        StepResult::Undecodable(reason) => failed(reason),
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Semaphore;

    use super::*;
    use crate::runtime::pool::tests::{claimed, runtime_over};
    use crate::runtime::slots::Slots;
    use crate::storage::{InMemoryStorage, SqliteStorage, Storage};

    /// Commits a lease extension of a freshly claimed job from inside a
    /// worker slot; returns the slots left free afterwards (of one).
    async fn free_slots_after_a_commit(storage: Arc<dyn Storage>) -> usize {
        let rt = runtime_over(storage, &Arc::new(Semaphore::new(Semaphore::MAX_PERMITS))).await;
        let job = claimed(&rt).await;
        let now = rt.inner.clock.now();
        let to = StateChange {
            state: job.state.clone(),
            payload: job.payload.clone(),
            fingerprint: job.fingerprint,
        };
        let lease = job.lease.as_ref().map(|l| l.token).unwrap();
        let outcome = Outcome::Continued {
            to,
            lease_until: now + 60_000,
        };
        let commit = Commit::held(&job, lease, rt.inner.worker_id.as_str(), now, outcome);
        let runtime_slots = Arc::new(Semaphore::new(1));
        let slots = Slots::new(Arc::clone(&runtime_slots), None);
        let permit = slots.try_take(1).unwrap();
        let mut slot = Some(WorkerSlot::new(slots, permit));
        let mut record = job.clone();
        commit_in(&rt.inner, commit, &mut record, &mut slot).await.unwrap();
        assert_eq!(record.version, job.version + 1, "the commit was written");
        runtime_slots.available_permits()
    }

    #[tokio::test]
    async fn an_executor_dropped_mid_step_stops_holding_its_job() {
        let gate = Arc::new(Semaphore::new(0));
        let rt = runtime_over(Arc::new(InMemoryStorage::new()), &gate).await;
        let job = claimed(&rt).await;
        let mut no_slot = None;
        let run = run_claimed(&rt.inner, job, &mut no_slot);
        let gave_up = tokio::time::timeout(Duration::from_millis(50), run).await;
        assert!(gave_up.is_err(), "the step waits at the gate");
        assert!(
            rt.inner.active.snapshot().is_empty(),
            "no heartbeat keeps the lease of a step nobody runs"
        );
    }

    #[tokio::test]
    async fn a_job_run_by_a_caller_who_stops_waiting_still_finishes() {
        let gate = Arc::new(Semaphore::new(0));
        let rt = runtime_over(Arc::new(InMemoryStorage::new()), &gate).await;
        let id = rt.submit_job(crate::job::Job::for_machine("m")).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(50), rt.run_job(&id)).await;
        assert!(gave_up.is_err(), "the step waits at the gate");
        gate.add_permits(1);
        let done = tokio::time::timeout(Duration::from_secs(10), rt.wait_record(id))
            .await
            .expect("the job finishes though its caller left")
            .unwrap();
        assert_eq!(done.status, JobState::Completed);
        assert!(rt.inner.active.snapshot().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_step_starts_under_a_lease_that_ran_out_while_its_commit_was_written() {
        use std::collections::HashMap;
        use std::sync::atomic::Ordering;
        use std::sync::Mutex;

        use crate::runtime::test_storage::{completed, runtime, Faulty};
        use crate::{DynamicNext, SimpleStateMachine};

        let storage = Arc::new(Faulty::default());
        // Each commit is written 300 ms after its step: past the lease it
        // gives a job that goes on to its next step.
        storage.slow_commits_ms.store(300, Ordering::SeqCst);
        let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let counted = Arc::clone(&runs);
        let machine = SimpleStateMachine::new("m")
            .initial_state("start")
            .state("middle")
            .terminal_state("done")
            .transition("start", "middle")
            .transition("middle", "done")
            .build()
            .unwrap()
            .with_handler(move |_ctx, step| {
                *counted.lock().unwrap().entry(step.state.clone()).or_default() += 1;
                let next = if step.state == "start" { "middle" } else { "done" };
                async move { Ok(DynamicNext::to(next)) }
            });
        let rt = runtime(storage.clone(), machine, 200).await;
        let id = rt.submit_job(crate::job::Job::for_machine("m")).await.unwrap();
        completed(&rt, id).await;
        let runs = runs.lock().unwrap().clone();
        assert_eq!(
            (runs.get("start"), runs.get("middle")),
            (Some(&1), Some(&1)),
            "each step ran once: the one after the late commit waited for a new claim"
        );
        rt.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_commit_that_storage_finishes_at_once_keeps_the_worker_slot() {
        assert_eq!(free_slots_after_a_commit(Arc::new(InMemoryStorage::new())).await, 0);
    }

    #[tokio::test]
    async fn a_commit_that_waits_on_storage_gives_the_worker_slot_back() {
        let storage = SqliteStorage::open_in_memory().unwrap();
        assert_eq!(free_slots_after_a_commit(Arc::new(storage)).await, 1);
    }
}

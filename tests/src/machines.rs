//! Machines used across the integration tests.

use runekernel::prelude::*;
use serde::{Deserialize, Serialize};

/// The guide's `Order`, declared once for the examples and the tests.
pub use runekernel_examples::{refund_allowed, Order, OrderCreatedNext, OrderHandler, OrderPaidNext, OrderState};

/// A machine with every variant shape and renamed states.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(version = 3)]
pub enum Shapes {
    /// Unit.
    #[state(initial, name = "start")]
    #[transition(to(Tuple, Struct))]
    Unit,
    /// Tuple.
    #[state(timeout_ms = 250, max_attempts = 7)]
    #[transition(to = Struct, label = "fill")]
    Tuple(u8, Option<String>),
    /// Struct.
    #[state(terminal, name = "end")]
    Struct {
        /// A list.
        items: Vec<String>,
        /// Optional, so it may be missing in stored data.
        note: Option<String>,
    },
}

/// The test shop: pays `100 * qty` cents, then ships orders under 5 000
/// cents and refunds the rest (a refund over 50 000 cents is refused by the
/// `refund_allowed` guard).
pub struct Shop;

impl OrderHandler for Shop {
    async fn created(&self, _ctx: &JobContext, _sku: String, qty: u32) -> Result<OrderCreatedNext, StepError> {
        if qty == 0 {
            return Ok(OrderCreatedNext::Cancelled);
        }
        Ok(OrderCreatedNext::Paid {
            amount_cents: 100 * u64::from(qty),
        })
    }

    async fn paid(&self, _ctx: &JobContext, amount_cents: u64) -> Result<OrderPaidNext, StepError> {
        if amount_cents >= 5_000 {
            return Ok(OrderPaidNext::Refunded);
        }
        Ok(OrderPaidNext::Shipped {
            tracking: format!("TRACK-{amount_cents}"),
        })
    }
}

/// A one-step job whose `mode` scripts what its handler does; see
/// [`Scripted`].
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Task {
    /// To do, the way `mode` says.
    #[state(initial)]
    #[transition(to = Done)]
    Todo {
        /// What the handler does.
        mode: String,
    },
    /// Done, at this attempt after this many calls.
    #[state(terminal)]
    Done {
        /// `ctx.attempt()` of the successful call.
        attempt: u32,
        /// How many times the handler was called for this job.
        calls: u32,
    },
}

/// How many times the `Task` handler ran for each job, and in what order.
/// Clones share the counts, so a test can keep one and register another.
#[derive(Clone, Default)]
pub struct Calls(std::sync::Arc<std::sync::Mutex<CallLog>>);

/// Calls per job, and every call in order.
type CallLog = (std::collections::HashMap<JobId, u32>, Vec<JobId>);

impl Calls {
    /// Counts one call and returns the count.
    pub fn count(&self, id: JobId) -> u32 {
        let mut calls = self.0.lock().unwrap();
        calls.1.push(id);
        let n = calls.0.entry(id).or_default();
        *n += 1;
        *n
    }

    /// Every call so far, in order.
    pub fn order(&self) -> Vec<JobId> {
        self.0.lock().unwrap().1.clone()
    }
}

/// The `Task` handler. Modes: `ok`; `retry-N` (retryable error on the first N
/// calls); `always-retry`; `fatal`; `panic-once`; `snooze-once` (snooze 50 ms
/// on the first call); `sleep-MS`; `wait-cancel` (return once cancelled);
/// `ignore-cancel` (sleep an hour); `pending` (never return); `resource`
/// (needs a registered `String` resource, and puts its length in `attempt`).
pub struct Scripted;

impl TaskHandler for Scripted {
    async fn todo(&self, ctx: &JobContext, mode: String) -> Result<TaskTodoNext, StepError> {
        let calls = ctx.resource::<Calls>()?.count(ctx.job_id());
        let done = Ok(TaskTodoNext::Done {
            attempt: ctx.attempt(),
            calls,
        });
        let failures = mode.strip_prefix("retry-").and_then(|n| n.parse::<u32>().ok());
        let sleep = mode.strip_prefix("sleep-").and_then(|n| n.parse::<u64>().ok());
        match mode.as_str() {
            "ok" => done,
            _ if failures.is_some_and(|n| calls <= n) => Err(StepError::retry(format!("failure {calls}"))),
            _ if failures.is_some() => done,
            "always-retry" => Err(StepError::retry("always failing")),
            "fatal" => Err(StepError::fatal("cannot ever work")),
            "panic-once" if calls == 1 => panic!("handler blew up"),
            "panic-once" => done,
            "snooze-once" if calls == 1 => Err(StepError::snooze(std::time::Duration::from_millis(50))),
            "snooze-once" => done,
            _ if sleep.is_some() => {
                tokio::time::sleep(std::time::Duration::from_millis(sleep.unwrap_or(0))).await;
                done
            }
            "wait-cancel" => {
                ctx.cancelled().await;
                Err(StepError::retry("stopped because cancelled"))
            }
            "ignore-cancel" => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                done
            }
            "pending" => std::future::pending().await,
            "resource" => {
                let text = ctx.resource::<String>()?;
                Ok(TaskTodoNext::Done {
                    attempt: text.len() as u32,
                    calls,
                })
            }
            other => Err(StepError::fatal(format!("unknown mode {other}"))),
        }
    }
}

/// A three-step pipeline, for crash and multi-process tests.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Pipeline {
    /// Received.
    #[state(initial)]
    #[transition(to = Parsed)]
    Received {
        /// The job's number.
        n: u64,
    },
    /// Parsed.
    #[transition(to = Stored)]
    Parsed {
        /// The job's number.
        n: u64,
        /// Its square.
        square: u64,
    },
    /// Stored.
    #[transition(to = Done)]
    Stored {
        /// The job's number.
        n: u64,
    },
    /// Done.
    #[state(terminal)]
    Done {
        /// The job's number.
        n: u64,
    },
}

/// The pipeline's handler: each step sleeps `step_ms` (to give a crash test
/// something to interrupt).
pub struct PipelineWorker {
    /// How long each step takes.
    pub step_ms: u64,
}

impl PipelineWorker {
    async fn pause(&self) {
        tokio::time::sleep(std::time::Duration::from_millis(self.step_ms)).await;
    }
}

impl PipelineHandler for PipelineWorker {
    async fn received(&self, _ctx: &JobContext, n: u64) -> Result<PipelineReceivedNext, StepError> {
        self.pause().await;
        Ok(PipelineReceivedNext::Parsed { n, square: n * n })
    }

    async fn parsed(&self, _ctx: &JobContext, n: u64, _square: u64) -> Result<PipelineParsedNext, StepError> {
        self.pause().await;
        Ok(PipelineParsedNext::Stored { n })
    }

    async fn stored(&self, _ctx: &JobContext, n: u64) -> Result<PipelineStoredNext, StepError> {
        self.pause().await;
        Ok(PipelineStoredNext::Done { n })
    }
}

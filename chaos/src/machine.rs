//! The machine every scenario runs: three steps and a terminal state. Each
//! handler call is appended to a run log before the step does anything, so
//! the audit can count how often each step's handler ran, whatever became
//! of the process that ran it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use runekernel::prelude::*;
use serde::{Deserialize, Serialize};

/// A three-step job.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(name = "chaos")]
pub enum Chaos {
    /// Submitted.
    #[state(initial)]
    #[transition(to = Fetched)]
    Start {
        /// The job's number.
        n: u64,
        /// How many attempts of the first step fail before one succeeds.
        fail_first: u32,
    },
    /// After the first step.
    #[transition(to = Stored)]
    Fetched {
        /// The job's number.
        n: u64,
    },
    /// After the second step.
    #[transition(to = Done)]
    Stored {
        /// The job's number.
        n: u64,
    },
    /// Finished.
    #[state(terminal)]
    Done {
        /// The job's number.
        n: u64,
    },
}

/// Runs the steps: each logs its call, then sleeps `step`.
pub struct Steps {
    /// How long each step takes.
    pub step: Duration,
    /// Where each handler call is logged (`<job id> <state> <process id>
    /// <unix ms>` a line), if anywhere.
    pub runs: Option<PathBuf>,
}

impl Steps {
    /// Logs a call of `state`'s handler for the job, then takes the step's
    /// time.
    async fn run(&self, ctx: &JobContext, state: &str) -> Result<(), StepError> {
        if let Some(path) = &self.runs {
            // One write of one short line to a file opened for appending:
            // lines from several processes do not interleave.
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let line = format!("{} {state} {} {at}\n", ctx.job_id(), std::process::id());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()))
                .map_err(StepError::fatal)?;
        }
        tokio::time::sleep(self.step).await;
        Ok(())
    }
}

impl ChaosHandler for Steps {
    async fn start(&self, ctx: &JobContext, n: u64, fail_first: u32) -> Result<ChaosStartNext, StepError> {
        self.run(ctx, "Start").await?;
        if ctx.attempt() <= fail_first {
            return Err(StepError::retry(format!(
                "planned failure {} of {fail_first}",
                ctx.attempt()
            )));
        }
        Ok(ChaosStartNext::Fetched { n })
    }

    async fn fetched(&self, ctx: &JobContext, n: u64) -> Result<ChaosFetchedNext, StepError> {
        self.run(ctx, "Fetched").await?;
        Ok(ChaosFetchedNext::Stored { n })
    }

    async fn stored(&self, ctx: &JobContext, n: u64) -> Result<ChaosStoredNext, StepError> {
        self.run(ctx, "Stored").await?;
        Ok(ChaosStoredNext::Done { n })
    }
}

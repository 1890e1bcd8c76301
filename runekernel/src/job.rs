//! [`Job`]: the untyped job of the original RuneKernel description. Its data
//! is a JSON object; it runs on a dynamic machine, by default the
//! lifecycle-only [`lifecycle_machine`] (`created` -> `done`).
//!
//! ```
//! use runekernel::{Runtime, job::Job};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new()?;
//! let mut job = Job::new();
//! job.set_data("name".to_string(), serde_json::Value::String("test-job".to_string()));
//! let id = runtime.submit_job(job).await?;
//! runtime.run_job(&id).await?;
//! # Ok(())
//! # }
//! ```

use serde_json::{Map, Value};

use crate::dynamic::{DynamicMachine, SimpleStateMachine};
use crate::submit_options::SubmitOptions;

/// The name of the machine untyped jobs run on by default.
pub const LIFECYCLE_MACHINE: &str = "job";

/// The machine an untyped job runs on unless it names another: `created`
/// (initial) -> `done` (terminal), no handler. Running such a job takes it
/// from `Pending` through `Running` to `Completed`.
pub fn lifecycle_machine() -> DynamicMachine {
    let machine = SimpleStateMachine::new(LIFECYCLE_MACHINE)
        .initial_state("created")
        .terminal_state("done")
        .transition("created", "done")
        .build();
    match machine {
        Ok(machine) => machine,
        // The graph above is fixed and valid; this arm cannot be taken.
        Err(error) => unreachable!("the lifecycle machine is valid: {error}"),
    }
}

/// An untyped job: a JSON object of data, for a dynamic machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub(crate) machine: String,
    pub(crate) data: Map<String, Value>,
    pub(crate) options: SubmitOptions,
}

impl Job {
    /// A job for the lifecycle-only machine, with no data.
    pub fn new() -> Self {
        Self::for_machine(LIFECYCLE_MACHINE)
    }

    /// A job for the dynamic machine called `machine` (registered on the
    /// runtime that runs it); it starts in that machine's initial state.
    pub fn for_machine(machine: impl Into<String>) -> Self {
        Job {
            machine: machine.into(),
            data: Map::new(),
            options: SubmitOptions::default(),
        }
    }

    /// Sets one data field.
    pub fn set_data(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.data.insert(key.into(), value.into());
    }

    /// The data so far.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// The machine it is for.
    pub fn machine(&self) -> &str {
        &self.machine
    }

    /// Submits it with these options.
    #[must_use]
    pub fn with_options(mut self, options: SubmitOptions) -> Self {
        self.options = options;
        self
    }
}

impl Default for Job {
    fn default() -> Self {
        Self::new()
    }
}

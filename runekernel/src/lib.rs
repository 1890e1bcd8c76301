//! RuneKernel: a typed, durable job runtime.
//!
//! A job's states are a plain enum with `#[derive(StateMachine)]`: the derive
//! checks the transition graph at compile time and generates a handler trait
//! whose methods can only return legal next states. The [`Runtime`] stores
//! every job (in memory, SQLite or Postgres) and runs it on tokio one
//! committed transition at a time, so nothing is lost or done twice when a
//! process dies.
//!
//! ```
//! use runekernel::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
//! #[machine(name = "order")]
//! pub enum Order {
//!     #[state(initial)]
//!     #[transition(to(Paid, Cancelled))]
//!     Created { sku: String, qty: u32 },
//!     #[transition(to = Shipped)]
//!     Paid { amount_cents: u64 },
//!     #[state(terminal)]
//!     Shipped { tracking: String },
//!     #[state(terminal)]
//!     Cancelled,
//! }
//!
//! struct Shop;
//!
//! impl OrderHandler for Shop {
//!     async fn created(&self, _ctx: &JobContext, _sku: String, qty: u32) -> Result<OrderCreatedNext, StepError> {
//!         if qty == 0 {
//!             return Ok(OrderCreatedNext::Cancelled);
//!         }
//!         Ok(OrderCreatedNext::Paid { amount_cents: 1999 * u64::from(qty) })
//!         // Ok(OrderCreatedNext::Shipped { .. }) would not compile: Created cannot go to Shipped.
//!     }
//!
//!     async fn paid(&self, _ctx: &JobContext, _amount_cents: u64) -> Result<OrderPaidNext, StepError> {
//!         Ok(OrderPaidNext::Shipped { tracking: "1Z999".into() })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = Runtime::builder()
//!     .storage(runekernel::storage::SqliteStorage::open_in_memory()?)
//!     .register(Order::handler(Shop))
//!     .build()
//!     .await?;
//! let id = rt.submit(Order::Created { sku: "rune-1".into(), qty: 2 }).await?;
//! let done = rt.wait::<Order>(id).await?;
//! assert_eq!(done.state, Order::Shipped { tracking: "1Z999".into() });
//! assert_eq!(rt.history(id).await?.len(), 3); // submitted, paid, shipped
//! rt.verify(id).await?;
//! rt.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! See the README for the attributes, the compile-time checks, retries,
//! cancellation, deterministic testing and the storage backends.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "admin")]
pub mod admin;
pub mod context;
pub mod dynamic;
pub mod handler;
pub mod job;
pub mod machine;
pub mod runtime;
mod signal;
pub mod step_error;

#[doc(hidden)]
pub mod __private;

pub use runekernel_macros::StateMachine;
pub use runekernel_storage as storage;

pub use context::{JobContext, Resources};
pub use dynamic::{Condition, DynamicMachine, DynamicNext, DynamicStep, SimpleStateMachine};
pub use handler::Handler;
pub use machine::{
    CodecError, EncodedState, Fingerprint, GraphError, GraphProblem, MachineDef, MachineDefBuilder, MachineState,
    StateDef, StateJsonError, StateMachine, StateShape, Transition, TransitionError, UnknownState,
};
pub use runtime::{
    termination, Backoff, JobView, Policies, Registration, Runtime, RuntimeBuilder, RuntimeError, SubmitOptions,
};
pub use step_error::{StepError, StepErrorKind};
pub use storage::{CancelOutcome, HistoryEntry, JobFilter, JobId, JobPage, JobRecord, JobState, ListOrder};

/// The state-machine vocabulary under the path the original RuneKernel
/// description uses (`runekernel::state_machine::{StateMachine, Transition}`).
pub mod state_machine {
    pub use crate::dynamic::SimpleStateMachine;
    pub use crate::machine::{MachineDef, StateMachine, Transition};
}

/// Everything a machine declaration, its handler and a runtime need.
pub mod prelude {
    pub use crate::{Handler, JobContext, JobId, JobState, JobView, Runtime, StateMachine, StepError, SubmitOptions};
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

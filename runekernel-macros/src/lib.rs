//! `#[derive(StateMachine)]`, the derive of [RuneKernel](https://docs.rs/runekernel).
//!
//! Use it through the `runekernel` crate, which re-exports it and holds the
//! traits and types the generated code refers to:
//!
//! ```
//! use runekernel::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
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
//! assert_eq!(Order::definition().initial().name, "Created");
//! ```
//!
//! The derive reads the attributes (`attr`), builds a plain model of the
//! machine (`ast`), checks the transition graph with the rules in `graph`
//! (`validate`), and only then generates code (`expand`). Every problem in one
//! enum is reported in the same compile, each on the token that causes it.

#![warn(missing_docs)]

mod ast;
mod attr;
mod errors;
mod expand;
mod validate;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `runekernel::StateMachine` for an enum whose variants are the
/// states of a job, and generates the typed transition API around it:
/// `<Enum>State`, one `<Enum><Variant>Next` enum per non-terminal state, the
/// `<Enum>Handler` trait and `<Enum>::handler(..)`.
///
/// See the `runekernel` crate documentation for the attributes
/// (`#[machine(..)]`, `#[state(..)]`, `#[transition(..)]`) and the compile-time
/// checks.
#[proc_macro_derive(StateMachine, attributes(machine, state, transition))]
pub fn derive_state_machine(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}

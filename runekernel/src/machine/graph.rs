//! The graph rules, shared with the derive: the very file
//! `runekernel-macros/src/graph.rs` compiled into this crate too (as
//! serde_derive shares `internals`), so a machine built at run time obeys
//! exactly the rules the derive enforces at compile time.

#[path = "../../../runekernel-macros/src/graph.rs"]
mod rules;

pub(crate) use rules::{check, suggest, GraphSpec, Problem, StateSpec, TransitionSpec};

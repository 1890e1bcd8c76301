//! The graph rules, shared with the derive through the
//! `runekernel-graph-rules` crate, so a machine built at run time obeys
//! exactly the rules the derive enforces at compile time.

pub(crate) use runekernel_graph_rules::{check, suggest, GraphSpec, Problem, StateSpec, TransitionSpec};

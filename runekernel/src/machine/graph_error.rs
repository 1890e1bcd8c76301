//! [`GraphError`]: a machine graph that breaks the rules, as
//! `MachineDef::builder(..).build()` reports it.

use std::fmt;

use super::graph::{GraphSpec, Problem};

/// A machine graph that breaks one or more rules; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the `{machine}` machine is not valid: {}", join(problems))]
pub struct GraphError {
    /// The machine's name.
    pub machine: String,
    /// Every problem found.
    pub problems: Vec<GraphProblem>,
}

fn join(problems: &[GraphProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// One broken graph rule, by state name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GraphProblem {
    /// The machine has no states.
    NoStates,
    /// Two states share a name.
    DuplicateState(String),
    /// No state is initial.
    NoInitial,
    /// More than one state is initial.
    ExtraInitial {
        /// The extra initial state.
        state: String,
        /// The first initial state.
        first: String,
    },
    /// A transition starts at a state that does not exist.
    UnknownSource {
        /// The source as written.
        from: String,
        /// The target as written.
        to: String,
        /// The closest state name.
        suggestion: Option<String>,
    },
    /// A transition leads to a state that does not exist.
    UnknownTarget {
        /// The source state.
        from: String,
        /// The target as written.
        to: String,
        /// The closest state name.
        suggestion: Option<String>,
    },
    /// A transition is declared twice.
    DuplicateTransition {
        /// The source state.
        from: String,
        /// The target state.
        to: String,
    },
    /// A terminal state has an outgoing transition.
    TerminalWithTransition {
        /// The terminal state.
        from: String,
        /// The target.
        to: String,
    },
    /// A non-terminal state has no outgoing transition.
    NoOutgoing(String),
    /// A state cannot be reached from the initial state.
    Unreachable(String),
    /// No terminal state can be reached from a state.
    NoTerminalReachable(String),
}

impl GraphProblem {
    pub(crate) fn from_rule(problem: &Problem, spec: &GraphSpec) -> Self {
        let name = |i: usize| spec.states[i].name.to_owned();
        let edge = |t: usize| (name(spec.transitions[t].from), spec.transitions[t].to.to_owned());
        match *problem {
            Problem::NoStates => GraphProblem::NoStates,
            Problem::DuplicateState { state, .. } => GraphProblem::DuplicateState(name(state)),
            Problem::NoInitial => GraphProblem::NoInitial,
            Problem::ExtraInitial { state, first } => GraphProblem::ExtraInitial {
                state: name(state),
                first: name(first),
            },
            Problem::UnknownTarget { transition, suggestion } => {
                let (from, to) = edge(transition);
                GraphProblem::UnknownTarget {
                    from,
                    to,
                    suggestion: suggestion.map(str::to_owned),
                }
            }
            Problem::DuplicateTransition { transition, .. } => {
                let (from, to) = edge(transition);
                GraphProblem::DuplicateTransition { from, to }
            }
            Problem::TerminalWithTransition { transition } => {
                let (from, to) = edge(transition);
                GraphProblem::TerminalWithTransition { from, to }
            }
            Problem::NoOutgoing { state } => GraphProblem::NoOutgoing(name(state)),
            Problem::Unreachable { state } => GraphProblem::Unreachable(name(state)),
            Problem::NoTerminalReachable { state } => GraphProblem::NoTerminalReachable(name(state)),
        }
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

impl fmt::Display for GraphProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphProblem::NoStates => f.write_str("it has no states"),
            GraphProblem::DuplicateState(s) => write!(f, "the state `{s}` is declared twice"),
            GraphProblem::NoInitial => f.write_str("no state is marked initial; mark the state new jobs start in"),
            GraphProblem::ExtraInitial { state, first } => write!(
                f,
                "`{state}` is marked initial, but `{first}` already is; a machine has exactly one initial state"
            ),
            GraphProblem::UnknownSource { from, to, suggestion } => write!(
                f,
                "the transition `{from}` -> `{to}` starts at `{from}`, which is not a state{}",
                did_you_mean(suggestion)
            ),
            GraphProblem::UnknownTarget { from, to, suggestion } => write!(
                f,
                "`{from}` has a transition to `{to}`, which is not a state{}",
                did_you_mean(suggestion)
            ),
            GraphProblem::DuplicateTransition { from, to } => {
                write!(f, "the transition `{from}` -> `{to}` is declared twice")
            }
            GraphProblem::TerminalWithTransition { from, to } => write!(
                f,
                "`{from}` is terminal, so it cannot have a transition (here to `{to}`)"
            ),
            GraphProblem::NoOutgoing(s) => write!(
                f,
                "`{s}` is not terminal but has no transition out of it; add one or mark it terminal"
            ),
            GraphProblem::Unreachable(s) => write!(f, "`{s}` cannot be reached from the initial state"),
            GraphProblem::NoTerminalReachable(s) => write!(
                f,
                "no terminal state can be reached from `{s}`; add a transition towards a terminal state or allow cycles"
            ),
        }
    }
}

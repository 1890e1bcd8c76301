//! The graph rules of a RuneKernel state machine, as plain functions over
//! plain data: every state reachable from an initial one, a terminal state
//! reachable from every state (unless cycles are allowed), names unique,
//! transitions to states that exist, with a suggestion for a misspelt one.
//!
//! Two crates use them: `runekernel-macros`, which turns each [`Problem`]
//! into a spanned compile error, and `runekernel`, which turns it into a
//! `GraphError` when a machine is built at run time (`SimpleStateMachine`,
//! `MachineDef::builder`). One crate for both is what makes a dynamic
//! machine obey exactly the rules the derive enforces.
//!
//! Nothing here knows about `syn` or spans: states and transitions are
//! referred to by their index in the input.
//!
//! ```
//! use runekernel_graph_rules::{check, GraphSpec, StateSpec, TransitionSpec};
//!
//! let spec = GraphSpec {
//!     states: vec![
//!         StateSpec { name: "Start", initial: true, terminal: false },
//!         StateSpec { name: "Done", initial: false, terminal: true },
//!     ],
//!     transitions: vec![TransitionSpec { from: 0, to: "Done" }],
//!     allow_cycles: false,
//! };
//! assert!(check(&spec).is_empty());
//! ```

#![warn(missing_docs)]

use std::collections::VecDeque;

/// One state of the graph under check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSpec<'a> {
    /// The state's name, as transitions refer to it.
    pub name: &'a str,
    /// Marked as the state jobs start in.
    pub initial: bool,
    /// Marked as a state jobs end in.
    pub terminal: bool,
}

/// One declared transition, from a state (by index) to a target (by name,
/// since the target may not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionSpec<'a> {
    /// Index of the source state in [`GraphSpec::states`].
    pub from: usize,
    /// Name of the target state as written.
    pub to: &'a str,
}

/// A whole machine graph under check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphSpec<'a> {
    /// The states, in declaration order.
    pub states: Vec<StateSpec<'a>>,
    /// The transitions, in declaration order.
    pub transitions: Vec<TransitionSpec<'a>>,
    /// When true, states that cannot reach a terminal state are accepted.
    pub allow_cycles: bool,
}

/// One broken rule. Indices refer to the [`GraphSpec`] that was checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem<'a> {
    /// The machine has no states at all.
    NoStates,
    /// Two states share a name.
    DuplicateState {
        /// The later state.
        state: usize,
        /// The state that has the name first.
        first: usize,
    },
    /// No state is marked initial.
    NoInitial,
    /// A second state is marked initial.
    ExtraInitial {
        /// The later state marked initial.
        state: usize,
        /// The state marked initial first.
        first: usize,
    },
    /// A transition names a state that does not exist.
    UnknownTarget {
        /// The transition.
        transition: usize,
        /// The existing state whose name is closest, if one is close.
        suggestion: Option<&'a str>,
    },
    /// The same (from, to) pair is declared twice.
    DuplicateTransition {
        /// The later declaration.
        transition: usize,
        /// The first declaration.
        first: usize,
    },
    /// A terminal state declares an outgoing transition.
    TerminalWithTransition {
        /// The transition.
        transition: usize,
    },
    /// A non-terminal state has no outgoing transition.
    NoOutgoing {
        /// The state.
        state: usize,
    },
    /// The state cannot be reached from the initial state.
    Unreachable {
        /// The state.
        state: usize,
    },
    /// No terminal state can be reached from the state.
    NoTerminalReachable {
        /// The state.
        state: usize,
    },
}

/// Checks every rule and returns every problem found, in a stable order
/// (grouped by rule, then by position). An empty result means the graph is
/// valid.
pub fn check<'a>(spec: &GraphSpec<'a>) -> Vec<Problem<'a>> {
    let mut problems = Vec::new();
    if spec.states.is_empty() {
        problems.push(Problem::NoStates);
        return problems;
    }
    let index = |name: &str| spec.states.iter().position(|s| s.name == name);

    for (i, state) in spec.states.iter().enumerate() {
        if let Some(first) = index(state.name).filter(|&first| first != i) {
            problems.push(Problem::DuplicateState { state: i, first });
        }
    }

    let initials: Vec<usize> = (0..spec.states.len()).filter(|&i| spec.states[i].initial).collect();
    match initials.split_first() {
        None => problems.push(Problem::NoInitial),
        Some((&first, rest)) => problems.extend(rest.iter().map(|&state| Problem::ExtraInitial { state, first })),
    }

    // Edges between known states, without duplicates.
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let mut edge_origin: Vec<usize> = Vec::new();
    let mut guessed: Vec<(usize, usize)> = Vec::new();
    for (t, transition) in spec.transitions.iter().enumerate() {
        let from_terminal = spec.states.get(transition.from).is_some_and(|state| state.terminal);
        if from_terminal {
            problems.push(Problem::TerminalWithTransition { transition: t });
        }
        let Some(to) = index(transition.to) else {
            let names = spec.states.iter().map(|s| s.name);
            let suggestion = suggest(transition.to, names);
            problems.push(Problem::UnknownTarget {
                transition: t,
                suggestion,
            });
            // The likely intended edge stands in for the misspelled one, so
            // one typo is one error, not a cascade of unreachable states.
            if let Some(meant) = suggestion.and_then(index) {
                guessed.push((transition.from, meant));
            }
            continue;
        };
        match edges.iter().position(|&e| e == (transition.from, to)) {
            Some(e) => problems.push(Problem::DuplicateTransition {
                transition: t,
                first: edge_origin[e],
            }),
            None => {
                edges.push((transition.from, to));
                edge_origin.push(t);
            }
        }
    }

    let dead_ends: Vec<usize> = (0..spec.states.len())
        .filter(|&i| !spec.states[i].terminal && !spec.transitions.iter().any(|t| t.from == i))
        .collect();
    problems.extend(dead_ends.iter().map(|&state| Problem::NoOutgoing { state }));

    if initials.is_empty() {
        return problems;
    }
    edges.extend(guessed);
    // From every state marked initial: an extra initial marker is reported
    // once, not again as a cascade of unreachable states.
    let reachable = reach(spec.states.len(), &edges, &initials, false);
    problems.extend(
        (0..spec.states.len())
            .filter(|&i| !reachable[i])
            .map(|state| Problem::Unreachable { state }),
    );

    if !spec.allow_cycles {
        let terminals: Vec<usize> = (0..spec.states.len()).filter(|&i| spec.states[i].terminal).collect();
        let finishes = reach(spec.states.len(), &edges, &terminals, true);
        problems.extend(
            (0..spec.states.len())
                .filter(|&i| reachable[i] && !finishes[i] && !dead_ends.contains(&i))
                .map(|state| Problem::NoTerminalReachable { state }),
        );
    }
    problems
}

/// Breadth-first reachability from `starts`, along the edges or (when
/// `backwards`) against them.
fn reach(len: usize, edges: &[(usize, usize)], starts: &[usize], backwards: bool) -> Vec<bool> {
    let mut seen = vec![false; len];
    let mut queue: VecDeque<usize> = starts.iter().copied().collect();
    for &s in starts {
        seen[s] = true;
    }
    while let Some(node) = queue.pop_front() {
        for &(from, to) in edges {
            let (a, b) = if backwards { (to, from) } else { (from, to) };
            if a == node && !seen[b] {
                seen[b] = true;
                queue.push_back(b);
            }
        }
    }
    seen
}

/// The candidate closest to `name`, if it is close enough to be a likely
/// misspelling (edit distance at most a third of the name's length, and at
/// least one), compared case-insensitively.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let lowered = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lowered, &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance between two strings, by characters, counting an adjacent
/// transposition as one edit (optimal string alignment), so `nmae` is one
/// edit from `name`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// `FooBar` -> `foo_bar`, `HTTPServer` -> `http_server`: the snake_case form
/// used for default machine names and handler method names.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> StateSpec<'_> {
        StateSpec {
            name,
            initial: false,
            terminal: false,
        }
    }

    fn order() -> GraphSpec<'static> {
        let mut states = vec![state("Created"), state("Paid"), state("Shipped"), state("Cancelled")];
        states[0].initial = true;
        states[2].terminal = true;
        states[3].terminal = true;
        let t = |from, to| TransitionSpec { from, to };
        GraphSpec {
            states,
            transitions: vec![t(0, "Paid"), t(0, "Cancelled"), t(1, "Shipped")],
            allow_cycles: false,
        }
    }

    #[test]
    fn a_valid_graph_has_no_problems() {
        assert_eq!(check(&order()), vec![]);
    }

    #[test]
    fn empty_machine() {
        assert_eq!(check(&GraphSpec::default()), vec![Problem::NoStates]);
    }

    #[test]
    fn initial_state_rules() {
        let mut spec = order();
        spec.states[0].initial = false;
        assert_eq!(check(&spec), vec![Problem::NoInitial]);
        spec.states[0].initial = true;
        spec.states[1].initial = true;
        assert_eq!(check(&spec), vec![Problem::ExtraInitial { state: 1, first: 0 }]);
    }

    #[test]
    fn unknown_target_suggests_the_closest_state() {
        let mut spec = order();
        spec.transitions[2].to = "Shiped";
        let problems = check(&spec);
        assert!(problems.contains(&Problem::UnknownTarget {
            transition: 2,
            suggestion: Some("Shipped")
        }));
        // The suggested edge stands in: nothing else is reported.
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn duplicate_and_terminal_transitions() {
        let mut spec = order();
        spec.transitions.push(TransitionSpec { from: 0, to: "Paid" });
        spec.transitions.push(TransitionSpec { from: 2, to: "Created" });
        assert_eq!(
            check(&spec),
            vec![
                Problem::DuplicateTransition {
                    transition: 3,
                    first: 0
                },
                Problem::TerminalWithTransition { transition: 4 },
            ]
        );
    }

    #[test]
    fn unreachable_and_trapped_states() {
        let mut spec = order();
        spec.states.push(state("Orphan"));
        spec.states.push(state("Loop"));
        spec.transitions.push(TransitionSpec { from: 4, to: "Shipped" });
        spec.transitions.push(TransitionSpec { from: 1, to: "Loop" });
        spec.transitions.push(TransitionSpec { from: 5, to: "Loop" });
        assert_eq!(
            check(&spec),
            vec![
                Problem::Unreachable { state: 4 },
                Problem::NoTerminalReachable { state: 5 }
            ]
        );
        spec.allow_cycles = true;
        assert_eq!(check(&spec), vec![Problem::Unreachable { state: 4 }]);
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        let names = ["Created", "Paid", "Shipped"];
        assert_eq!(suggest("shipped", names), Some("Shipped"));
        assert_eq!(suggest("Payd", names), Some("Paid"));
        assert_eq!(suggest("Refunded", names), None);
        assert_eq!(suggest("nmae", ["name", "version"]), Some("name"));
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("Order"), "order");
        assert_eq!(snake_case("PaymentCaptured"), "payment_captured");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Step2Done"), "step2_done");
    }
}

//! The graph rules (shared by the derive and `MachineDef::builder`) against a
//! straightforward reference: Warshall's transitive closure and set logic,
//! on random graphs.

use std::collections::BTreeSet;

use proptest::prelude::*;
use runekernel::{GraphProblem, MachineDef, StateDef, Transition};

#[derive(Debug, Clone)]
struct Graph {
    states: Vec<(bool, bool)>,          // (initial, terminal)
    edges: Vec<(usize, Option<usize>)>, // target None: a name that is not a state
    allow_cycles: bool,
}

fn name(i: usize) -> String {
    format!("state_{i}")
}

fn graphs() -> impl Strategy<Value = Graph> {
    (1usize..7).prop_flat_map(|n| {
        (
            prop::collection::vec((prop::bool::weighted(0.25), prop::bool::weighted(0.3)), n),
            prop::collection::vec((0..n, prop::option::weighted(0.9, 0..n)), 0..12),
            any::<bool>(),
        )
            .prop_map(|(states, edges, allow_cycles)| Graph {
                states,
                edges,
                allow_cycles,
            })
    })
}

fn build(g: &Graph) -> Result<MachineDef, runekernel::GraphError> {
    let mut b = MachineDef::builder("random").allow_cycles(g.allow_cycles);
    for (i, &(initial, terminal)) in g.states.iter().enumerate() {
        let mut s = StateDef::new(name(i));
        if initial {
            s = s.initial();
        }
        if terminal {
            s = s.terminal();
        }
        b = b.state(s);
    }
    for &(from, to) in &g.edges {
        let to = to.map_or_else(|| "nowhere_at_all".to_owned(), name);
        b = b.transition(Transition::new(name(from), to));
    }
    b.build()
}

fn reference(g: &Graph) -> BTreeSet<GraphProblem> {
    let n = g.states.len();
    let mut out = BTreeSet::new();
    let initials: Vec<usize> = (0..n).filter(|&i| g.states[i].0).collect();
    match initials.split_first() {
        None => {
            out.insert(GraphProblem::NoInitial);
        }
        Some((&first, rest)) => {
            for &i in rest {
                out.insert(GraphProblem::ExtraInitial {
                    state: name(i),
                    first: name(first),
                });
            }
        }
    }
    let mut adj = vec![vec![false; n]; n];
    let mut seen = BTreeSet::new();
    for &(from, to) in &g.edges {
        if g.states[from].1 {
            let to_name = to.map_or_else(|| "nowhere_at_all".to_owned(), name);
            out.insert(GraphProblem::TerminalWithTransition {
                from: name(from),
                to: to_name,
            });
        }
        match to {
            None => {
                out.insert(GraphProblem::UnknownTarget {
                    from: name(from),
                    to: "nowhere_at_all".into(),
                    suggestion: None,
                });
            }
            Some(to) => {
                if !seen.insert((from, to)) {
                    out.insert(GraphProblem::DuplicateTransition {
                        from: name(from),
                        to: name(to),
                    });
                }
                adj[from][to] = true;
            }
        }
    }
    let dead: Vec<bool> = (0..n)
        .map(|i| !g.states[i].1 && !g.edges.iter().any(|&(f, _)| f == i))
        .collect();
    for i in (0..n).filter(|&i| dead[i]) {
        out.insert(GraphProblem::NoOutgoing(name(i)));
    }
    if initials.is_empty() {
        return out;
    }
    // Warshall: closure[i][j] = j reachable from i in one or more steps.
    let mut closure = adj.clone();
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                closure[i][j] = closure[i][j] || (closure[i][k] && closure[k][j]);
            }
        }
    }
    let reachable: Vec<bool> = (0..n)
        .map(|s| initials.iter().any(|&i| i == s || closure[i][s]))
        .collect();
    for s in (0..n).filter(|&s| !reachable[s]) {
        out.insert(GraphProblem::Unreachable(name(s)));
    }
    if !g.allow_cycles {
        for s in 0..n {
            let finishes = g.states[s].1 || (0..n).any(|t| g.states[t].1 && closure[s][t]);
            if reachable[s] && !finishes && !dead[s] {
                out.insert(GraphProblem::NoTerminalReachable(name(s)));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rules_match_the_reference(g in graphs()) {
        let expected = reference(&g);
        match build(&g) {
            Ok(def) => {
                prop_assert!(expected.is_empty(), "accepted, but the reference finds {expected:?}");
                prop_assert_eq!(def.states().len(), g.states.len());
            }
            Err(err) => {
                let found: BTreeSet<GraphProblem> = err.problems.iter().cloned().collect();
                prop_assert_eq!(found, expected);
            }
        }
    }
}

#[test]
fn a_built_machine_lists_its_transitions() {
    let def = MachineDef::builder("m")
        .state(StateDef::new("a").initial())
        .state(StateDef::new("b").terminal())
        .transition(Transition::new("a", "b").with_guard("ok"))
        .build()
        .unwrap();
    assert_eq!(def.transitions(), &[Transition::new("a", "b").with_guard("ok")]);
}

#[test]
fn unknown_sources_are_reported_with_a_suggestion() {
    let err = MachineDef::builder("m")
        .state(StateDef::new("start").initial())
        .state(StateDef::new("end").terminal())
        .transition(Transition::new("start", "end"))
        .transition(Transition::new("strat", "end"))
        .build()
        .unwrap_err();
    assert_eq!(
        err.problems,
        [GraphProblem::UnknownSource {
            from: "strat".into(),
            to: "end".into(),
            suggestion: Some("start".into())
        }]
    );
    assert!(err.to_string().contains("did you mean `start`?"), "{err}");
}

//! The semantic pass: runs the graph rules of [`crate::graph`] over the
//! machine and turns each problem into an error on the offending token.
//! Runs after parsing and before any code is generated.

use syn::Ident;

use crate::ast::{Machine, State};
use crate::errors::Errors;
use runekernel_graph_rules::{self as graph, GraphSpec, Problem, StateSpec, TransitionSpec};

/// Checks the machine and records every problem in `errors`.
pub fn check(machine: &Machine, errors: &mut Errors) {
    let names: Vec<String> = machine.states.iter().map(State::name).collect();
    let targets: Vec<String> = machine
        .states
        .iter()
        .flat_map(|s| s.transitions.iter().map(|t| t.to.to_string()))
        .collect();
    // (state index, target ident) for each flattened transition.
    let flat: Vec<(usize, &Ident)> = machine
        .states
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.transitions.iter().map(move |t| (i, &t.to)))
        .collect();

    // Transitions name variants; the graph is checked over variant names,
    // while duplicate stored names are checked separately below.
    let variant_names: Vec<String> = machine.states.iter().map(|s| s.ident().to_string()).collect();
    let spec = GraphSpec {
        states: machine
            .states
            .iter()
            .zip(&variant_names)
            .map(|(s, name)| StateSpec {
                name,
                initial: s.is_initial(),
                terminal: s.is_terminal(),
            })
            .collect(),
        transitions: flat
            .iter()
            .zip(&targets)
            .map(|(&(from, _), to)| TransitionSpec { from, to })
            .collect(),
        allow_cycles: machine.attrs.allow_cycles.is_some(),
    };

    for problem in graph::check(&spec) {
        if !follows_from_attribute_error(machine, &problem) {
            errors.push(describe(machine, &flat, &problem));
        }
    }
    check_stored_names(machine, &names, errors);
    check_method_names(machine, errors);
}

/// Whether a problem may only be the consequence of an attribute that did
/// not parse (a lost `initial` marker, a lost transition): such an attribute
/// is already reported, and the rest shows once it is fixed.
fn follows_from_attribute_error(machine: &Machine, problem: &Problem) -> bool {
    let any_state_attr = machine.states.iter().any(|s| s.attrs_broken);
    let any_transition = machine.states.iter().any(|s| s.transitions_broken);
    match *problem {
        Problem::NoInitial => any_state_attr,
        Problem::NoOutgoing { state } => {
            let s = &machine.states[state];
            s.attrs_broken || s.transitions_broken
        }
        Problem::Unreachable { .. } => any_transition,
        Problem::NoTerminalReachable { .. } => machine.attrs_broken || any_state_attr || any_transition,
        _ => false,
    }
}

/// One problem as an error on the token that causes it.
fn describe(machine: &Machine, flat: &[(usize, &Ident)], problem: &Problem) -> syn::Error {
    let enum_name = machine.ident;
    let state = |i: usize| &machine.states[i];
    let list = || {
        machine
            .states
            .iter()
            .map(|s| format!("`{}`", s.ident()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match *problem {
        Problem::NoStates => syn::Error::new(
            enum_name.span(),
            format!("`{enum_name}` has no variants, so it has no states; add at least one variant and mark the first with #[state(initial)]"),
        ),
        Problem::DuplicateState { state: i, first } => syn::Error::new(
            state(i).ident().span(),
            format!("`{}` is declared twice; `{}` already is a state of `{enum_name}`", state(i).ident(), state(first).ident()),
        ),
        Problem::NoInitial => syn::Error::new(
            enum_name.span(),
            format!(
                "`{enum_name}` has no initial state; mark the state new jobs start in with #[state(initial)] (one of {})",
                list()
            ),
        ),
        Problem::ExtraInitial { state: i, first } => syn::Error::new(
            state(i).attrs.initial.unwrap_or_else(|| state(i).ident().span()),
            format!(
                "`{}` is marked #[state(initial)], but `{}` already is; a machine has exactly one initial state, so remove one of the two markers",
                state(i).ident(),
                state(first).ident()
            ),
        ),
        Problem::UnknownTarget { transition, suggestion } => {
            let (from, to) = flat[transition];
            let hint = match suggestion {
                Some(close) => format!("; did you mean `{close}`? The"),
                None => "; the".to_owned(),
            };
            syn::Error::new(
                to.span(),
                format!(
                    "`{}` has a transition to `{to}`, which is not a state of `{enum_name}`{hint} states are {}",
                    state(from).ident(),
                    list()
                ),
            )
        }
        Problem::DuplicateTransition { transition, .. } => {
            let (from, to) = flat[transition];
            syn::Error::new(
                to.span(),
                format!(
                    "the transition from `{}` to `{to}` is declared twice; remove this one",
                    state(from).ident()
                ),
            )
        }
        Problem::TerminalWithTransition { transition } => {
            let (from, to) = flat[transition];
            syn::Error::new(
                to.span(),
                format!(
                    "`{}` is #[state(terminal)], so it cannot have a transition (here to `{to}`); remove the #[transition] or the terminal marker",
                    state(from).ident()
                ),
            )
        }
        Problem::NoOutgoing { state: i } => syn::Error::new(
            state(i).ident().span(),
            format!(
                "`{}` is not terminal but has no transition out of it, so a job there could never finish; add #[transition(to = ..)] or mark it #[state(terminal)]",
                state(i).ident()
            ),
        ),
        Problem::Unreachable { state: i } => {
            let initial = machine
                .states
                .iter()
                .find(|s| s.is_initial())
                .map(|s| s.ident().to_string())
                .unwrap_or_default();
            syn::Error::new(
                state(i).ident().span(),
                format!(
                    "`{}` cannot be reached from the initial state `{initial}`; add a transition to it from a reachable state, or remove it",
                    state(i).ident()
                ),
            )
        }
        Problem::NoTerminalReachable { state: i } => syn::Error::new(
            state(i).ident().span(),
            format!(
                "no terminal state can be reached from `{}`, so a job there would never finish; add a transition towards a #[state(terminal)] state, or accept this with #[machine(allow_cycles)]",
                state(i).ident()
            ),
        ),
    }
}

/// Two states may not store under the same name (`#[state(name = ..)]`).
fn check_stored_names(machine: &Machine, names: &[String], errors: &mut Errors) {
    for (i, state) in machine.states.iter().enumerate() {
        if let Some(first) = names[..i].iter().position(|n| *n == names[i]) {
            errors.push(syn::Error::new(
                state.name_span(),
                format!(
                    "`{}` is stored under the name \"{}\", which `{}` already uses; give it a distinct #[state(name = \"..\")]",
                    state.ident(),
                    names[i],
                    machine.states[first].ident()
                ),
            ));
        }
    }
}

/// Handler method names are the variants in snake_case, so they must differ.
fn check_method_names(machine: &Machine, errors: &mut Errors) {
    for (state, first) in machine.method_clashes() {
        let method = state.method();
        errors.push(syn::Error::new(
            state.ident().span(),
            format!(
                "`{}` and `{}` both become the handler method `{method}`; rename one of the variants",
                state.ident(),
                first.ident()
            ),
        ));
    }
}

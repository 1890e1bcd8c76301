//! Parsing of `#[machine(..)]`, `#[state(..)]` and `#[transition(..)]` into
//! plain structs that keep the tokens they came from, for spans.
//!
//! Every malformed, unknown or repeated key is recorded in [`Errors`] and
//! parsing goes on, so one compile reports every mistake.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Ident, LitInt, LitStr, Path, Token};

use crate::errors::Errors;
use runekernel_graph_rules::suggest;

/// `#[machine(name = "...", version = N, queue = "...", crate = path, allow_cycles)]`.
#[derive(Default)]
pub struct MachineAttrs {
    pub name: Option<LitStr>,
    pub version: Option<LitInt>,
    pub queue: Option<LitStr>,
    pub krate: Option<Path>,
    pub allow_cycles: Option<Span>,
}

/// `#[state(initial, terminal, name = "...", timeout_ms = N, max_attempts = N)]`.
#[derive(Default)]
pub struct StateAttrs {
    pub initial: Option<Span>,
    pub terminal: Option<Span>,
    pub name: Option<LitStr>,
    pub timeout_ms: Option<LitInt>,
    pub max_attempts: Option<LitInt>,
}

/// One target of a `#[transition(..)]` attribute; `to(X, Y)` gives two.
pub struct TransitionAttr {
    pub to: Ident,
    pub guard: Option<Path>,
    pub label: Option<LitStr>,
}

/// The keys of `#[machine(..)]`.
#[derive(Clone, Copy)]
enum MachineKey {
    Name,
    Version,
    Queue,
    Crate,
    AllowCycles,
}

const MACHINE_KEYS: &[(&str, MachineKey)] = &[
    ("name", MachineKey::Name),
    ("version", MachineKey::Version),
    ("queue", MachineKey::Queue),
    ("crate", MachineKey::Crate),
    ("allow_cycles", MachineKey::AllowCycles),
];

/// The keys of `#[state(..)]`.
#[derive(Clone, Copy)]
enum StateKey {
    Initial,
    Terminal,
    Name,
    TimeoutMs,
    MaxAttempts,
}

const STATE_KEYS: &[(&str, StateKey)] = &[
    ("initial", StateKey::Initial),
    ("terminal", StateKey::Terminal),
    ("name", StateKey::Name),
    ("timeout_ms", StateKey::TimeoutMs),
    ("max_attempts", StateKey::MaxAttempts),
];

/// The keys of `#[transition(..)]`.
#[derive(Clone, Copy)]
enum TransitionKey {
    To,
    Guard,
    Label,
}

const TRANSITION_KEYS: &[(&str, TransitionKey)] = &[
    ("to", TransitionKey::To),
    ("guard", TransitionKey::Guard),
    ("label", TransitionKey::Label),
];

/// Parses every `#[machine(..)]` on the enum.
pub fn machine_attrs(attrs: &[Attribute], errors: &mut Errors) -> MachineAttrs {
    let mut out = MachineAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("machine")) {
        let result = attr.parse_nested_meta(|meta| {
            match key_of(&meta, MACHINE_KEYS, "machine")? {
                MachineKey::Name => set(&mut out.name, value(&meta, "name = \"order\"")?, &meta, errors),
                MachineKey::Version => {
                    let lit: LitInt = value(&meta, "version = 2")?;
                    lit.base10_parse::<u32>()?;
                    set(&mut out.version, lit, &meta, errors);
                }
                MachineKey::Queue => {
                    let lit: LitStr = value(&meta, "queue = \"emails\"")?;
                    if lit.value().trim().is_empty() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "the queue name is empty; name a queue such as `queue = \"emails\"`, or leave the key out for the default queue",
                        ));
                    }
                    set(&mut out.queue, lit, &meta, errors);
                }
                MachineKey::Crate => set(
                    &mut out.krate,
                    value(&meta, "crate = my_crate::runekernel")?,
                    &meta,
                    errors,
                ),
                MachineKey::AllowCycles => set(&mut out.allow_cycles, meta.path.span_of(), &meta, errors),
            }
            Ok(())
        });
        errors.push_result(result);
    }
    if let Some(name) = &out.name {
        if name.value().trim().is_empty() {
            errors.push(syn::Error::new(
                name.span(),
                "the machine name is empty; give a stable, non-empty name such as `name = \"order\"`",
            ));
        }
    }
    out
}

/// Parses every `#[state(..)]` on one variant.
pub fn state_attrs(attrs: &[Attribute], errors: &mut Errors) -> StateAttrs {
    let mut out = StateAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("state")) {
        let result = attr.parse_nested_meta(|meta| {
            match key_of(&meta, STATE_KEYS, "state")? {
                StateKey::Initial => set(&mut out.initial, meta.path.span_of(), &meta, errors),
                StateKey::Terminal => set(&mut out.terminal, meta.path.span_of(), &meta, errors),
                StateKey::Name => {
                    let lit: LitStr = value(&meta, "name = \"created\"")?;
                    if lit.value().trim().is_empty() {
                        return Err(syn::Error::new(lit.span(), "a stored state name cannot be empty"));
                    }
                    set(&mut out.name, lit, &meta, errors);
                }
                StateKey::TimeoutMs => {
                    let lit = positive_int(&meta, "timeout_ms")?;
                    set(&mut out.timeout_ms, lit, &meta, errors);
                }
                StateKey::MaxAttempts => {
                    let lit = positive_int(&meta, "max_attempts")?;
                    set(&mut out.max_attempts, lit, &meta, errors);
                }
            }
            Ok(())
        });
        errors.push_result(result);
    }
    out
}

/// Parses every `#[transition(..)]` on one variant, one entry per target.
pub fn transition_attrs(attrs: &[Attribute], errors: &mut Errors) -> Vec<TransitionAttr> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("transition")) {
        let mut targets: Option<Vec<Ident>> = None;
        let mut guard: Option<Path> = None;
        let mut label: Option<LitStr> = None;
        let result = attr.parse_nested_meta(|meta| {
            match key_of(&meta, TRANSITION_KEYS, "transition")? {
                TransitionKey::To => {
                    let parsed = if meta.input.peek(Token![=]) {
                        vec![value::<Ident>(&meta, "to = Shipped")?]
                    } else {
                        let mut list = Vec::new();
                        meta.parse_nested_meta(|inner| {
                            list.push(inner.path.require_ident()?.clone());
                            Ok(())
                        })?;
                        list
                    };
                    if parsed.is_empty() {
                        return Err(meta.error("`to(..)` lists no state; name at least one"));
                    }
                    set(&mut targets, parsed, &meta, errors);
                }
                TransitionKey::Guard => set(&mut guard, value(&meta, "guard = my_guard_fn")?, &meta, errors),
                TransitionKey::Label => set(&mut label, value(&meta, "label = \"approve\"")?, &meta, errors),
            }
            Ok(())
        });
        if !errors.push_result(result) {
            continue;
        }
        let Some(targets) = targets else {
            errors.push(syn::Error::new_spanned(
                attr,
                "this #[transition] names no target state; write `#[transition(to = State)]` or `#[transition(to(A, B))]`",
            ));
            continue;
        };
        out.extend(targets.into_iter().map(|to| TransitionAttr {
            to,
            guard: guard.clone(),
            label: label.clone(),
        }));
    }
    out
}

/// The key of one nested meta item, looked up among the attribute's keys,
/// with a "did you mean" for near misses.
fn key_of<K: Copy>(meta: &ParseNestedMeta, known: &[(&str, K)], attribute: &str) -> syn::Result<K> {
    let key = meta.path.get_ident().map(|ident| ident.to_string()).unwrap_or_default();
    if let Some(&(_, found)) = known.iter().find(|(name, _)| *name == key) {
        return Ok(found);
    }
    let shown = if key.is_empty() {
        "this".to_owned()
    } else {
        format!("`{key}`")
    };
    let hint = match suggest(&key, known.iter().map(|(name, _)| *name)) {
        Some(close) => format!("; did you mean `{close}`?"),
        None => ";".to_owned(),
    };
    let expected: Vec<String> = known.iter().map(|(name, _)| format!("`{name}`")).collect();
    Err(meta.error(format!(
        "unknown #[{attribute}] key {shown}{hint} #[{attribute}(..)] accepts {}",
        expected.join(", ")
    )))
}

/// The value after `key =`, with an error that shows the expected form.
fn value<T: syn::parse::Parse>(meta: &ParseNestedMeta, example: &str) -> syn::Result<T> {
    let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
    meta.value()?
        .parse::<T>()
        .map_err(|e| syn::Error::new(e.span(), format!("`{key}` expects a value written like `{example}`")))
}

/// A positive integer value that fits in `u32`.
fn positive_int(meta: &ParseNestedMeta, key: &str) -> syn::Result<LitInt> {
    let lit: LitInt = value(meta, &format!("{key} = 5000"))?;
    match lit.base10_parse::<u32>() {
        Ok(n) if n > 0 => Ok(lit),
        _ => Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must be a whole number from 1 to {}", u32::MAX),
        )),
    }
}

/// Stores a value, or records a "given twice" error if one is already there.
fn set<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta, errors: &mut Errors) {
    if slot.is_some() {
        let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
        errors.push(meta.error(format!("`{key}` is given twice; keep one")));
    } else {
        *slot = Some(value);
    }
}

/// The span of a path, for flag keys such as `initial`.
trait SpanOf {
    fn span_of(&self) -> Span;
}

impl SpanOf for Path {
    fn span_of(&self) -> Span {
        syn::spanned::Spanned::span(self)
    }
}

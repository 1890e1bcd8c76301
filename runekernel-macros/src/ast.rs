//! The user's enum read as a machine: a borrowed view of the `syn` input plus
//! the parsed attributes, keeping every token for spans.

use proc_macro2::Span;
use quote::format_ident;
use syn::{Data, DeriveInput, Fields, Ident, LitInt, LitStr, Path, Type, Variant, Visibility};

use crate::attr::{self, MachineAttrs, StateAttrs, TransitionAttr};
use crate::errors::Errors;
use runekernel_graph_rules::snake_case;

/// The whole machine.
pub struct Machine<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub attrs: MachineAttrs,
    /// `#[machine(..)]` had an error, so a key may be missing.
    pub attrs_broken: bool,
    pub states: Vec<State<'a>>,
}

/// One variant, i.e. one state.
pub struct State<'a> {
    pub variant: &'a Variant,
    pub attrs: StateAttrs,
    /// `#[state(..)]` had an error, so a marker may be missing.
    pub attrs_broken: bool,
    pub transitions: Vec<TransitionAttr>,
    /// A `#[transition(..)]` had an error, so a transition may be missing.
    pub transitions_broken: bool,
    pub fields: Vec<Field<'a>>,
    pub shape: Shape,
}

/// How a variant holds its data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Unit,
    Tuple,
    Struct,
}

/// One field of a variant. `binding` is the name it is bound to in generated
/// patterns and handler parameters: the field's own name, or `arg0`, `arg1`...
pub struct Field<'a> {
    pub member: Option<&'a Ident>,
    pub binding: Ident,
    pub ty: &'a Type,
}

impl<'a> Machine<'a> {
    /// Reads the input. Structural problems (not an enum, generics) and
    /// attribute errors go to `errors`; `None` means there is nothing to
    /// check further.
    pub fn from_input(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        let data = match &input.data {
            Data::Enum(data) => data,
            Data::Struct(s) => {
                errors.push(syn::Error::new(
                    s.struct_token.span,
                    format!(
                        "#[derive(StateMachine)] works on enums only, and `{}` is a struct; declare each state as a variant of an enum",
                        input.ident
                    ),
                ));
                return None;
            }
            Data::Union(u) => {
                errors.push(syn::Error::new(
                    u.union_token.span,
                    format!(
                        "#[derive(StateMachine)] works on enums only, and `{}` is a union; declare each state as a variant of an enum",
                        input.ident
                    ),
                ));
                return None;
            }
        };
        if let Some(param) = input.generics.params.first() {
            errors.push(syn::Error::new_spanned(
                param,
                format!(
                    "#[derive(StateMachine)] does not support generic enums: a stored job must decode to one concrete type; make `{}` concrete (a type alias of a generic enum does not work either)",
                    input.ident
                ),
            ));
        }
        let before = errors.len();
        let attrs = attr::machine_attrs(&input.attrs, errors);
        let attrs_broken = errors.len() > before;
        let states = data
            .variants
            .iter()
            .map(|variant| State::from_variant(variant, errors))
            .collect();
        Some(Machine {
            ident: &input.ident,
            vis: &input.vis,
            attrs,
            attrs_broken,
            states,
        })
    }

    /// The machine's stored name: `#[machine(name)]` or the enum's name in
    /// snake_case.
    pub fn name(&self) -> String {
        match &self.attrs.name {
            Some(lit) => lit.value(),
            None => snake_case(&self.ident.to_string()),
        }
    }

    /// The path to the runtime crate: `#[machine(crate = ..)]` or `::runekernel`.
    pub fn krate(&self) -> Path {
        match &self.attrs.krate {
            Some(path) => path.clone(),
            None => syn::parse_quote!(::runekernel),
        }
    }

    /// `OrderState`.
    pub fn state_enum(&self) -> Ident {
        format_ident!("{}State", self.ident)
    }

    /// `OrderHandler`.
    pub fn handler_trait(&self) -> Ident {
        format_ident!("{}Handler", self.ident)
    }

    /// The state with this variant name.
    pub fn state(&self, ident: &Ident) -> Option<&State<'a>> {
        self.states.iter().find(|s| s.ident() == ident)
    }

    /// States that have a handler method.
    pub fn non_terminal(&self) -> impl Iterator<Item = &State<'a>> {
        self.states.iter().filter(|s| !s.is_terminal())
    }

    /// The non-terminal states whose handler method an earlier one already
    /// has, each with that earlier state.
    pub fn method_clashes(&self) -> Vec<(&State<'a>, &State<'a>)> {
        let states: Vec<&State<'a>> = self.non_terminal().collect();
        states
            .iter()
            .enumerate()
            .filter_map(|(i, state)| {
                let method = state.method();
                states[..i]
                    .iter()
                    .find(|s| s.method() == method)
                    .map(|first| (*state, *first))
            })
            .collect()
    }

    /// Keeps the first of each state's transitions to the same target, so
    /// that code generated for a machine with errors stays well-formed.
    pub fn drop_repeated_transitions(&mut self) {
        for state in &mut self.states {
            let mut seen: Vec<String> = Vec::new();
            state.transitions.retain(|t| {
                let to = t.to.to_string();
                let first = !seen.contains(&to);
                seen.push(to);
                first
            });
        }
    }
}

impl<'a> State<'a> {
    fn from_variant(variant: &'a Variant, errors: &mut Errors) -> Self {
        let before = errors.len();
        let attrs = attr::state_attrs(&variant.attrs, errors);
        let attrs_broken = errors.len() > before;
        let before = errors.len();
        let transitions = attr::transition_attrs(&variant.attrs, errors);
        let transitions_broken = errors.len() > before;
        let (shape, fields) = match &variant.fields {
            Fields::Unit => (Shape::Unit, Vec::new()),
            Fields::Named(named) => (
                Shape::Struct,
                named
                    .named
                    .iter()
                    .filter_map(|f| {
                        let ident = f.ident.as_ref()?;
                        Some(Field {
                            member: Some(ident),
                            binding: ident.clone(),
                            ty: &f.ty,
                        })
                    })
                    .collect(),
            ),
            Fields::Unnamed(unnamed) => (
                Shape::Tuple,
                unnamed
                    .unnamed
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Field {
                        member: None,
                        binding: format_ident!("arg{}", i),
                        ty: &f.ty,
                    })
                    .collect(),
            ),
        };
        State {
            variant,
            attrs,
            attrs_broken,
            transitions,
            transitions_broken,
            fields,
            shape,
        }
    }

    pub fn ident(&self) -> &'a Ident {
        &self.variant.ident
    }

    /// The stored name: `#[state(name)]` or the variant's name.
    pub fn name(&self) -> String {
        match &self.attrs.name {
            Some(lit) => lit.value(),
            None => self.ident().to_string(),
        }
    }

    /// Where to point at this state's stored name.
    pub fn name_span(&self) -> Span {
        self.attrs
            .name
            .as_ref()
            .map_or_else(|| self.ident().span(), LitStr::span)
    }

    pub fn is_initial(&self) -> bool {
        self.attrs.initial.is_some()
    }

    pub fn is_terminal(&self) -> bool {
        self.attrs.terminal.is_some()
    }

    /// The handler method: the variant name in snake_case, as a raw
    /// identifier when that is a keyword (`Struct` -> `r#struct`).
    pub fn method(&self) -> Ident {
        let name = snake_case(&self.ident().to_string());
        let span = self.ident().span();
        match name.as_str() {
            // These cannot be raw identifiers.
            "self" | "super" | "crate" => format_ident!("{}_", name, span = span),
            _ if syn::parse_str::<Ident>(&name).is_err() => Ident::new_raw(&name, span),
            _ => Ident::new(&name, span),
        }
    }

    /// `OrderCreatedNext`.
    pub fn next_enum(&self, machine: &Ident) -> Ident {
        format_ident!("{}{}Next", machine, self.ident())
    }

    /// A pattern binding every field: `Order::Created { sku, qty }`,
    /// `Order::Paid(arg0)`, `Order::Cancelled`.
    pub fn pattern(&self, path: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        let ident = self.ident();
        let bindings = self.fields.iter().map(|f| &f.binding);
        match self.shape {
            Shape::Unit => quote::quote!(#path::#ident),
            Shape::Tuple => quote::quote!(#path::#ident(#(#bindings),*)),
            Shape::Struct => quote::quote!(#path::#ident { #(#bindings),* }),
        }
    }

    /// A pattern matching this state whatever its data:
    /// `Order::Created { .. }`, `Order::Paid(..)`, `Order::Cancelled`.
    pub fn wildcard_pattern(&self, path: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        let ident = self.ident();
        match self.shape {
            Shape::Unit => quote::quote!(#path::#ident),
            Shape::Tuple => quote::quote!(#path::#ident(..)),
            Shape::Struct => quote::quote!(#path::#ident { .. }),
        }
    }

    pub fn timeout_ms(&self) -> Option<&LitInt> {
        self.attrs.timeout_ms.as_ref()
    }

    pub fn max_attempts(&self) -> Option<&LitInt> {
        self.attrs.max_attempts.as_ref()
    }
}

//! Code generation, one file per generated item. Runs on a machine that
//! passed every check of `validate`, or, beside the errors of one that did
//! not, on the machine as far as it parsed (see [`derive`]).

mod definition;
mod handler_trait;
mod machine_impl;
mod next_enums;
mod state_enum;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::ast::Machine;
use crate::errors::Errors;
use crate::validate;

/// Reads, checks and expands one derive input.
///
/// On an error in the machine's attributes or graph, the errors are emitted
/// together with the generated items (thiserror's fallback, for the same
/// reason): without them, every `impl OrderHandler`, `OrderCreatedNext` and
/// `Order::handler(..)` in the user's crate would be an error too, burying
/// the one that matters. The items need not be right, only present and
/// well-formed: the crate does not build while an error stands.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let machine = Machine::from_input(input, &mut errors);
    if let Some(machine) = &machine {
        validate::check(machine, &mut errors);
    }
    let compile_errors = match errors.finish() {
        Ok(()) => TokenStream::new(),
        Err(compile_errors) => compile_errors,
    };
    let Some(mut machine) = machine else {
        return compile_errors;
    };
    if !compile_errors.is_empty() {
        // No well-formed items exist for an enum without states, for a
        // generic one, or when two states would declare the same handler
        // method.
        if machine.states.is_empty() || !input.generics.params.is_empty() || !machine.method_clashes().is_empty() {
            return compile_errors;
        }
        machine.drop_repeated_transitions();
    }
    let state_enum = state_enum::expand(&machine);
    let next_enums = next_enums::expand(&machine);
    let handler_trait = handler_trait::expand(&machine);
    let machine_impl = machine_impl::expand(&machine);
    quote! {
        #compile_errors
        #state_enum
        #next_enums
        #handler_trait
        #machine_impl
    }
}

//! Code generation, one file per generated item. Runs only on a machine that
//! passed every check of `validate`.

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

/// Reads, checks and expands one derive input; on any error, only the
/// errors are emitted.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let machine = Machine::from_input(input, &mut errors);
    if let Some(machine) = &machine {
        validate::check(machine, &mut errors);
    }
    if let Err(compile_errors) = errors.finish() {
        return compile_errors;
    }
    let Some(machine) = machine else {
        return TokenStream::new();
    };
    let state_enum = state_enum::expand(&machine);
    let next_enums = next_enums::expand(&machine);
    let handler_trait = handler_trait::expand(&machine);
    let machine_impl = machine_impl::expand(&machine);
    quote! {
        #state_enum
        #next_enums
        #handler_trait
        #machine_impl
    }
}

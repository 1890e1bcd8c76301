//! `StateMachine::definition()`: the machine's `MachineDef`, built once on
//! first use from the checked attributes.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Machine, Shape};

pub fn expand(machine: &Machine) -> TokenStream {
    let krate = machine.krate();
    let private = quote!(#krate::__private);
    let name = machine.name();
    let version = match &machine.attrs.version {
        Some(lit) => quote!(#lit),
        None => quote!(1),
    };
    let allow_cycles = machine.attrs.allow_cycles.is_some();
    let queue = machine.attrs.queue.as_ref().map(|q| quote!(.queue(#q)));
    let states = machine.states.iter().map(|s| {
        let name = s.name();
        let shape = match s.shape {
            Shape::Unit => quote!(#krate::StateShape::Unit),
            Shape::Tuple => {
                let n = s.fields.len();
                quote!(#krate::StateShape::Tuple(#n))
            }
            Shape::Struct => quote!(#krate::StateShape::Struct),
        };
        let mut def = quote!(#krate::StateDef::new(#name).with_shape(#shape));
        let variant = s.ident().to_string();
        if variant != name {
            def = quote!(#def.with_variant(#variant));
        }
        if s.is_initial() {
            def = quote!(#def.initial());
        }
        if s.is_terminal() {
            def = quote!(#def.terminal());
        }
        if let Some(ms) = s.timeout_ms() {
            def = quote!(#def.with_timeout(::core::time::Duration::from_millis(#ms)));
        }
        if let Some(n) = s.max_attempts() {
            def = quote!(#def.with_max_attempts(#n));
        }
        def
    });
    let transitions = machine.states.iter().flat_map(|from| {
        let krate = &krate;
        from.transitions.iter().filter_map(move |t| {
            let to = machine.state(&t.to)?;
            let (from_name, to_name) = (from.name(), to.name());
            let mut def = quote!(#krate::Transition::new(#from_name, #to_name));
            if let Some(guard) = &t.guard {
                let guard = quote!(#guard).to_string().replace(' ', "");
                def = quote!(#def.with_guard(#guard));
            }
            if let Some(label) = &t.label {
                def = quote!(#def.with_label(#label));
            }
            Some(def)
        })
    });
    quote! {
        fn definition() -> &'static #krate::MachineDef {
            static DEFINITION: #private::OnceLock<#krate::MachineDef> = #private::OnceLock::new();
            DEFINITION.get_or_init(|| {
                #private::checked_definition(
                    #krate::MachineDef::builder(#name)
                        .version(#version)
                        #queue
                        .allow_cycles(#allow_cycles)
                        #( .state(#states) )*
                        #( .transition(#transitions) )*
                )
            })
        }
    }
}

//! `impl StateMachine for <Enum>`: the state of a value, the run-time
//! transition check (guards included), and the storage codec (state name plus
//! JSON payload, and back).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Ident;

use crate::ast::{Machine, Shape, State};
use crate::expand::definition;

pub fn expand(machine: &Machine) -> TokenStream {
    let ident = machine.ident;
    let state_enum = machine.state_enum();
    let krate = machine.krate();
    let name = machine.name();
    let definition = definition::expand(machine);
    let check = check_transition(machine);
    let encode = encode(machine);
    let decode = decode(machine);
    let state_arms = machine.states.iter().map(|s| {
        let variant = s.ident();
        let pattern = s.wildcard_pattern(quote!(#ident));
        quote!(#pattern => #state_enum::#variant,)
    });
    quote! {
        const _: () = {
            impl #krate::StateMachine for #ident {
                type State = #state_enum;
                const NAME: &'static str = #name;

                #definition

                fn state(&self) -> #state_enum {
                    match self { #(#state_arms)* }
                }

                #check
                #encode
                #decode
            }
        };
    }
}

fn check_transition(machine: &Machine) -> TokenStream {
    let ident = machine.ident;
    let state_enum = machine.state_enum();
    let krate = machine.krate();
    let next = Ident::new("next", Span::mixed_site());
    let arms = machine.states.iter().flat_map(|from| {
        let state_enum = &state_enum;
        let next = &next;
        let krate = &krate;
        from.transitions.iter().filter_map(move |t| {
            let to = machine.state(&t.to)?;
            let (from_v, to_v) = (from.ident(), to.ident());
            let body = match &t.guard {
                None => quote!(::core::result::Result::Ok(())),
                Some(guard) => {
                    let (from_name, to_name) = (from.name(), to.name());
                    let guard_name = quote!(#guard).to_string().replace(' ', "");
                    let typed = quote_spanned! {guard.span()=>
                        let guard: fn(&#ident, &#ident) -> bool = #guard;
                    };
                    quote! {{
                        #typed
                        if guard(self, #next) {
                            ::core::result::Result::Ok(())
                        } else {
                            ::core::result::Result::Err(#krate::TransitionError::guard_rejected(
                                <Self as #krate::StateMachine>::definition(), #from_name, #to_name, #guard_name,
                            ))
                        }
                    }}
                }
            };
            Some(quote!((#state_enum::#from_v, #state_enum::#to_v) => #body,))
        })
    });
    quote! {
        fn check_transition(&self, #next: &Self) -> ::core::result::Result<(), #krate::TransitionError> {
            match (#krate::StateMachine::state(self), #krate::StateMachine::state(#next)) {
                #(#arms)*
                (from, to) => ::core::result::Result::Err(#krate::TransitionError::not_allowed(
                    <Self as #krate::StateMachine>::definition(), from.as_str(), to.as_str(),
                )),
            }
        }
    }
}

fn encode(machine: &Machine) -> TokenStream {
    let ident = machine.ident;
    let krate = machine.krate();
    let private = quote!(#krate::__private);
    let arms = machine.states.iter().map(|state| {
        let pattern = state.pattern(quote!(#ident));
        let name = state.name();
        let values = state.fields.iter().enumerate().map(|(i, f)| {
            let binding = &f.binding;
            let field = field_name(state, i);
            quote!(#private::encode_field(<Self as #krate::StateMachine>::NAME, #name, #field, #binding)?)
        });
        let payload = match state.shape {
            Shape::Unit => quote!(#private::Value::Null),
            Shape::Tuple => quote!(#private::Value::Array(#private::vec![#(#values),*])),
            Shape::Struct => {
                let keys = state.fields.iter().enumerate().map(|(i, _)| field_name(state, i));
                quote! {{
                    let mut map = #private::Map::new();
                    #( map.insert(#private::String::from(#keys), #values); )*
                    #private::Value::Object(map)
                }}
            }
        };
        quote!(#pattern => ::core::result::Result::Ok(#krate::EncodedState { state: #name, payload: #payload }),)
    });
    quote! {
        fn encode(&self) -> ::core::result::Result<#krate::EncodedState, #krate::CodecError> {
            match self { #(#arms)* }
        }
    }
}

fn decode(machine: &Machine) -> TokenStream {
    let ident = machine.ident;
    let krate = machine.krate();
    let private = quote!(#krate::__private);
    let payload = Ident::new("payload", Span::mixed_site());
    let arms = machine.states.iter().map(|state| {
        let name = state.name();
        let variant = state.ident();
        let machine_name = quote!(<Self as #krate::StateMachine>::NAME);
        let body = match state.shape {
            Shape::Unit => quote!(::core::result::Result::Ok(#ident::#variant)),
            Shape::Tuple => {
                let count = state.fields.len();
                let values = (0..count).map(|i| {
                    let field = field_name(state, i);
                    quote!(#private::decode_field(#machine_name, #name, #field, items.next())?)
                });
                quote! {{
                    let mut items = #private::tuple_fields(#machine_name, #name, #payload, #count)?.into_iter();
                    ::core::result::Result::Ok(#ident::#variant(#(#values),*))
                }}
            }
            Shape::Struct => {
                let members = state.fields.iter().map(|f| &f.binding);
                let values = (0..state.fields.len()).map(|i| {
                    let field = field_name(state, i);
                    quote!(#private::decode_field(#machine_name, #name, #field, fields.remove(#field))?)
                });
                quote! {{
                    let mut fields = #private::struct_fields(#machine_name, #name, #payload)?;
                    ::core::result::Result::Ok(#ident::#variant { #(#members: #values),* })
                }}
            }
        };
        quote!(#name => #body,)
    });
    quote! {
        fn decode(state: &str, #payload: #private::Value) -> ::core::result::Result<Self, #krate::CodecError> {
            match state {
                #(#arms)*
                other => ::core::result::Result::Err(#krate::CodecError::unknown_state(
                    <Self as #krate::StateMachine>::definition(), other,
                )),
            }
        }
    }
}

/// The key a field is stored under: its name, or its position for a tuple
/// variant.
fn field_name(state: &State, index: usize) -> String {
    match state.fields[index].member {
        Some(ident) => ident.to_string(),
        None => index.to_string(),
    }
}

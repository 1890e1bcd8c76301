//! Collects every error found while reading and checking one enum, so a
//! single compile reports all of them (serde_derive's `Ctxt`, without the
//! drop-time panic: [`Errors::finish`] is the only way out).

use proc_macro2::TokenStream;

/// The errors found so far.
#[derive(Default)]
pub struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    /// Records one error.
    pub fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// How many errors have been recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Records the error of a failed result; returns whether it succeeded.
    pub fn push_result(&mut self, result: syn::Result<()>) -> bool {
        match result {
            Ok(()) => true,
            Err(error) => {
                self.push(error);
                false
            }
        }
    }

    /// `Ok(())` when nothing was recorded, otherwise every error as
    /// `compile_error!` invocations, in the order they were found.
    pub fn finish(self) -> Result<(), TokenStream> {
        let mut iter = self.errors.into_iter();
        let Some(mut combined) = iter.next() else {
            return Ok(());
        };
        for error in iter {
            combined.combine(error);
        }
        Err(combined.to_compile_error())
    }
}

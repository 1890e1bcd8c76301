//! Generated items carry docs, so `missing_docs` stays quiet.
#![deny(missing_docs)]

use runekernel::prelude::*;

/// A document's review.
#[derive(StateMachine)]
pub enum Review {
    /// Being written.
    #[state(initial)]
    #[transition(to(Published, Dropped))]
    Draft {
        /// The text.
        text: String,
    },
    /// Out.
    #[state(terminal)]
    Published,
    /// Abandoned.
    #[state(terminal)]
    Dropped(String),
}

/// Main.
fn main() {
    let _ = ReviewState::Draft;
}

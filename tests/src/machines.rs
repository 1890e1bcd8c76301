//! Machines used across the integration tests.

use runekernel::prelude::*;
use serde::{Deserialize, Serialize};

/// DESIGN.md §2's `Order`, verbatim.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(name = "order")]
pub enum Order {
    /// A new order.
    #[state(initial)]
    #[transition(to(Paid, Cancelled))]
    Created {
        /// What was ordered.
        sku: String,
        /// How many.
        qty: u32,
    },

    /// Paid for.
    #[transition(to = Shipped)]
    #[transition(to = Refunded, guard = refund_allowed)]
    Paid {
        /// The amount paid.
        amount_cents: u64,
    },

    /// Shipped.
    #[state(terminal)]
    Shipped {
        /// The carrier's tracking number.
        tracking: String,
    },

    /// Cancelled before payment.
    #[state(terminal)]
    Cancelled,

    /// Refunded after payment.
    #[state(terminal)]
    Refunded,
}

/// Refunds are allowed for payments under 100 000 cents.
pub fn refund_allowed(from: &Order, _to: &Order) -> bool {
    matches!(from, Order::Paid { amount_cents } if *amount_cents < 100_000)
}

/// A machine with every variant shape and renamed states.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(version = 3)]
pub enum Shapes {
    /// Unit.
    #[state(initial, name = "start")]
    #[transition(to(Tuple, Struct))]
    Unit,
    /// Tuple.
    #[state(timeout_ms = 250, max_attempts = 7)]
    #[transition(to = Struct, label = "fill")]
    Tuple(u8, Option<String>),
    /// Struct.
    #[state(terminal, name = "end")]
    Struct {
        /// A list.
        items: Vec<String>,
        /// Optional, so it may be missing in stored data.
        note: Option<String>,
    },
}

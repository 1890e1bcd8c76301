//! The machines RuneKernel's examples and demo run: the guide's `Order` (the
//! `runekernel` crate's documentation), exactly as written there, with a
//! shop that handles it.
//!
//! ```
//! use runekernel::prelude::*;
//! use runekernel_examples::{Order, Shop};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), runekernel::RuntimeError> {
//! let rt = Runtime::builder().deterministic(7).register(Order::handler(Shop::default())).build().await?;
//! let id = rt.submit(Order::Created { sku: "rune-1".into(), qty: 2 }).await?;
//! assert!(matches!(rt.wait::<Order>(id).await?.state, Order::Shipped { .. }));
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use runekernel::prelude::*;
use serde::{Deserialize, Serialize};

/// An order, as the guide (the `runekernel` crate's documentation) declares it.
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
        /// The amount charged.
        amount_cents: u64,
    },

    /// On its way.
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

/// Refunds are allowed up to 500.00.
pub fn refund_allowed(from: &Order, _to: &Order) -> bool {
    matches!(from, Order::Paid { amount_cents } if *amount_cents <= 50_000)
}

/// Prices of the demo catalogue, in cents.
pub fn price_cents(sku: &str) -> Option<u64> {
    match sku {
        "rune-1" => Some(1_999),
        "rune-2" => Some(4_999),
        "tome" => Some(12_500),
        _ => None,
    }
}

/// A shop: charges the catalogue price (a quantity of 0 cancels; an unknown
/// SKU is a fatal error), then ships, except that quantities over 10 are
/// refunded as out of stock. Its payment gateway is flaky: the first charge
/// and every `flaky_every`-th after it fail, and are retried.
#[derive(Debug, Default)]
pub struct Shop {
    /// Fail every n-th charge (0: never).
    pub flaky_every: u32,
    charges: AtomicU32,
}

impl Shop {
    /// A shop whose first charge, and every `n`-th after it, fails.
    pub fn flaky(n: u32) -> Self {
        Shop {
            flaky_every: n,
            charges: AtomicU32::new(0),
        }
    }
}

impl OrderHandler for Shop {
    async fn created(&self, _ctx: &JobContext, sku: String, qty: u32) -> Result<OrderCreatedNext, StepError> {
        if qty == 0 {
            return Ok(OrderCreatedNext::Cancelled);
        }
        let price = price_cents(&sku).ok_or_else(|| StepError::fatal(format!("unknown SKU `{sku}`")))?;
        let charge = self.charges.fetch_add(1, Ordering::Relaxed) + 1;
        if self.flaky_every > 0 && (charge - 1).is_multiple_of(self.flaky_every) {
            return Err(StepError::retry("the payment gateway timed out"));
        }
        Ok(OrderCreatedNext::Paid {
            amount_cents: price * u64::from(qty),
        })
    }

    async fn paid(&self, ctx: &JobContext, amount_cents: u64) -> Result<OrderPaidNext, StepError> {
        if amount_cents > 10 * 12_500 {
            return Ok(OrderPaidNext::Refunded);
        }
        Ok(OrderPaidNext::Shipped {
            tracking: format!("RK{}", &ctx.job_id().to_string()[..8]),
        })
    }
}

/// An invoice: drafted, sent, reminded while unpaid, then paid or written
/// off. Reminders loop back to `Sent`, and a terminal state is always
/// reachable.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(name = "invoice")]
pub enum Invoice {
    /// Written, not yet sent.
    #[state(initial)]
    #[transition(to = Sent, label = "send")]
    Drafted {
        /// Who pays.
        customer: String,
        /// How much.
        amount_cents: u64,
    },

    /// Sent; waiting for payment.
    #[state(timeout_ms = 5_000)]
    #[transition(to = Paid, label = "payment received")]
    #[transition(to = Reminded, label = "overdue")]
    Sent {
        /// Who pays.
        customer: String,
        /// How much.
        amount_cents: u64,
        /// Reminders sent so far.
        reminders: u32,
    },

    /// A reminder went out.
    #[transition(to = Sent, label = "wait again")]
    #[transition(to = WrittenOff, guard = reminders_exhausted, label = "give up")]
    Reminded {
        /// Who pays.
        customer: String,
        /// How much.
        amount_cents: u64,
        /// Reminders sent so far.
        reminders: u32,
    },

    /// Paid.
    #[state(terminal)]
    Paid {
        /// The receipt number.
        receipt: String,
    },

    /// Never paid.
    #[state(terminal)]
    WrittenOff {
        /// Why.
        reason: String,
    },
}

/// An invoice is written off only after three reminders.
pub fn reminders_exhausted(from: &Invoice, _to: &Invoice) -> bool {
    matches!(from, Invoice::Reminded { reminders, .. } if *reminders >= 3)
}

/// Sends invoices and chases them. Whether a customer pays is decided from
/// the job id, so a demo shows a mix of outcomes; waiting is a snooze.
#[derive(Debug, Default)]
pub struct Billing;

fn luck(ctx: &JobContext, salt: u128) -> u128 {
    (ctx.job_id().as_u128() ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 100
}

impl InvoiceHandler for Billing {
    async fn drafted(
        &self,
        _ctx: &JobContext,
        customer: String,
        amount_cents: u64,
    ) -> Result<InvoiceDraftedNext, StepError> {
        Ok(InvoiceDraftedNext::Sent {
            customer,
            amount_cents,
            reminders: 0,
        })
    }

    async fn sent(
        &self,
        ctx: &JobContext,
        customer: String,
        amount_cents: u64,
        reminders: u32,
    ) -> Result<InvoiceSentNext, StepError> {
        if luck(ctx, u128::from(reminders)) < 40 {
            return Ok(InvoiceSentNext::Paid {
                receipt: format!("R-{}-{reminders}", &ctx.job_id().to_string()[..8]),
            });
        }
        if ctx.attempt() == 1 && luck(ctx, 99) < 50 {
            // Not due yet: look again in a while, without spending an attempt.
            return Err(StepError::snooze(std::time::Duration::from_secs(2)));
        }
        Ok(InvoiceSentNext::Reminded {
            customer,
            amount_cents,
            reminders: reminders + 1,
        })
    }

    async fn reminded(
        &self,
        _ctx: &JobContext,
        customer: String,
        amount_cents: u64,
        reminders: u32,
    ) -> Result<InvoiceRemindedNext, StepError> {
        if reminders >= 3 {
            return Ok(InvoiceRemindedNext::WrittenOff {
                reason: format!("{customer} did not pay after {reminders} reminders"),
            });
        }
        Ok(InvoiceRemindedNext::Sent {
            customer,
            amount_cents,
            reminders,
        })
    }
}

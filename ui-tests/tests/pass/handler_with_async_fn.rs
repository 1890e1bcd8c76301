use runekernel::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(name = "order")]
pub enum Order {
    #[state(initial)]
    #[transition(to(Paid, Cancelled))]
    Created { sku: String, qty: u32 },
    #[transition(to = Shipped)]
    Paid { amount_cents: u64 },
    #[state(terminal)]
    Shipped { tracking: String },
    #[state(terminal)]
    Cancelled,
}

struct Shop {
    price_cents: u64,
}

impl OrderHandler for Shop {
    async fn created(&self, _ctx: &JobContext, _sku: String, qty: u32) -> Result<OrderCreatedNext, StepError> {
        tokio::task::yield_now().await;
        if qty == 0 {
            return Ok(OrderCreatedNext::Cancelled);
        }
        Ok(OrderCreatedNext::Paid { amount_cents: self.price_cents * u64::from(qty) })
    }

    async fn paid(&self, ctx: &JobContext, amount_cents: u64) -> Result<OrderPaidNext, StepError> {
        Ok(OrderPaidNext::Shipped { tracking: format!("{}-{amount_cents}", ctx.attempt()) })
    }
}

#[tokio::main]
async fn main() {
    let handler: Handler<Order> = Order::handler(Shop { price_cents: 250 });
    let ctx = JobContext::detached(JobId::new());
    let paid = handler.run(Order::Created { sku: "rune".into(), qty: 2 }, ctx.clone()).await.unwrap();
    assert_eq!(paid, Order::Paid { amount_cents: 500 });
    let shipped = handler.run(paid, ctx.clone()).await.unwrap();
    assert_eq!(shipped, Order::Shipped { tracking: "1-500".into() });
    assert!(handler.run(shipped, ctx).await.is_err());
}

// One graph mistake is one error: the generated handler trait, next-state
// enums and `handler(..)` are still there, so the code that uses them
// raises none of its own.
use runekernel::prelude::*;

#[derive(StateMachine, Debug, Clone, PartialEq)]
enum Order {
    #[state(initial)]
    #[transition(to(Paid, Cancelled))]
    Created,
    #[transition(to = Shipped)]
    Paid,
    #[transition(to = Shipped)]
    Forgotten,
    #[state(terminal)]
    Shipped,
    #[state(terminal)]
    Cancelled,
}

struct Shop;

impl OrderHandler for Shop {
    async fn created(&self, _ctx: &JobContext) -> Result<OrderCreatedNext, StepError> {
        Ok(OrderCreatedNext::Paid)
    }

    async fn paid(&self, _ctx: &JobContext) -> Result<OrderPaidNext, StepError> {
        Ok(OrderPaidNext::Shipped)
    }

    async fn forgotten(&self, _ctx: &JobContext) -> Result<OrderForgottenNext, StepError> {
        Ok(OrderForgottenNext::Shipped)
    }
}

fn main() {
    let _ = Runtime::builder().register(Order::handler(Shop));
    let _ = Order::definition();
}

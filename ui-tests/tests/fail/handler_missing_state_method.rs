use runekernel::prelude::*;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to(Paid, Cancelled))]
    Created,
    #[transition(to = Cancelled)]
    Paid,
    #[state(terminal)]
    Cancelled,
}

struct Shop;

impl OrderHandler for Shop {
    async fn created(&self, _ctx: &JobContext) -> Result<OrderCreatedNext, StepError> {
        Ok(OrderCreatedNext::Paid)
    }
}

fn main() {}

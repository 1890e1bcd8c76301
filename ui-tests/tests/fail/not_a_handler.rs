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

fn main() {
    let _handler = Order::handler(Shop);
}

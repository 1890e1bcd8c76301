use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to(Paid, Shipped))]
    Created,
    Paid,
    #[state(terminal)]
    Shipped,
}

fn main() {}

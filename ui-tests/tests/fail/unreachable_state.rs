use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Shipped)]
    Created,
    #[transition(to = Shipped)]
    Forgotten,
    #[state(terminal)]
    Shipped,
}

fn main() {}

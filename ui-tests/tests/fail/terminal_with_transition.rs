use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Shipped)]
    Created,
    #[state(terminal)]
    #[transition(to = Created)]
    Shipped,
}

fn main() {}

use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to(Shipped, Teleported))]
    Created,
    #[state(terminal)]
    Shipped,
}

fn main() {}

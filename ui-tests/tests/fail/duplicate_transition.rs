use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Shipped)]
    #[transition(to = Shipped, label = "again")]
    Created,
    #[state(terminal)]
    Shipped,
}

fn main() {}

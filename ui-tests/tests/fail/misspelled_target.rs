use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Shiped)]
    Created,
    #[state(terminal)]
    Shipped,
}

fn main() {}

use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to(Shipped, Ping))]
    Created,
    #[transition(to = Pong)]
    Ping,
    #[transition(to = Ping)]
    Pong,
    #[state(terminal)]
    Shipped,
}

fn main() {}

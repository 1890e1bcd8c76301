use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial, timeout_ms = 0)]
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

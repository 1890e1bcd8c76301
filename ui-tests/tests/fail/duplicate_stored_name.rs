use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial, name = "new")]
    #[transition(to = Done)]
    Created,
    #[state(terminal, name = "new")]
    Done,
}

fn main() {}

use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(label = "go")]
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Done, when = ready)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

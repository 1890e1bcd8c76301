use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Done)]
    Created,
    #[state(initial)]
    #[transition(to = Done)]
    Imported,
    #[state(terminal)]
    Done,
}

fn main() {}

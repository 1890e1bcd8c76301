use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(inital)]
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

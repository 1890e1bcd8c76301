use runekernel::StateMachine;

#[derive(StateMachine)]
#[machine(name = order)]
enum Order {
    #[state(initial)]
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

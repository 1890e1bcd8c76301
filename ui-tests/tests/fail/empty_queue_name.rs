use runekernel::StateMachine;

#[derive(StateMachine)]
#[machine(queue = " ")]
enum Order {
    #[state(initial)]
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

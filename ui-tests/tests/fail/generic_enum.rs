use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order<T> {
    #[state(initial)]
    #[transition(to = Done)]
    Created(T),
    #[state(terminal)]
    Done,
}

fn main() {}

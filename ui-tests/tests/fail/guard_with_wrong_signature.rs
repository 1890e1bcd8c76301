use runekernel::StateMachine;

#[derive(StateMachine)]
enum Order {
    #[state(initial)]
    #[transition(to = Done, guard = ready)]
    Created,
    #[state(terminal)]
    Done,
}

fn ready(_order: &Order) -> bool {
    true
}

fn main() {}

use runekernel::StateMachine;

#[derive(StateMachine)]
#[machine(nmae = "order")]
enum Order {
    #[state(initial)]
    #[transition(to = Done)]
    Created,
    #[state(terminal)]
    Done,
}

fn main() {}

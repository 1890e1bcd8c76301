use runekernel::StateMachine;

#[derive(StateMachine)]
#[machine(colour = "blue")]
enum Order {
    #[state(initial)]
    #[transition(to = Payd)]
    Created,
    #[state(initial)]
    #[transition(to = Shipped)]
    Paid,
    #[state(terminal)]
    #[transition(to = Paid)]
    Shipped,
    Lost,
}

fn main() {}

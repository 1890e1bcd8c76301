use runekernel::StateMachine;

#[derive(StateMachine)]
enum Nothing {}

fn main() {}

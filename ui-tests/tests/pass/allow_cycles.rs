use runekernel::prelude::*;

#[derive(StateMachine, Debug)]
#[machine(allow_cycles)]
enum Heartbeat {
    #[state(initial)]
    #[transition(to = Ping)]
    Start,
    #[transition(to = Pong)]
    Ping,
    #[transition(to = Ping)]
    Pong,
}

fn main() {
    assert!(Heartbeat::definition().allows_cycles());
    assert_eq!(Heartbeat::definition().terminals().count(), 0);
}

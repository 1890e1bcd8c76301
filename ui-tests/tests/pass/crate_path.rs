extern crate runekernel as rk;

use rk::StateMachine;

#[derive(StateMachine)]
#[machine(crate = rk, name = "renamed_crate")]
enum Job {
    #[state(initial)]
    #[transition(to = Done)]
    Start,
    #[state(terminal)]
    Done,
}

fn main() {
    assert_eq!(<Job as rk::StateMachine>::NAME, "renamed_crate");
}

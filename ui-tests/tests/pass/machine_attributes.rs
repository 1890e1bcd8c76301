use runekernel::prelude::*;
use std::time::Duration;

#[derive(StateMachine)]
#[machine(name = "billing-run", version = 4)]
enum BillingRun {
    #[state(initial, name = "created", timeout_ms = 1500, max_attempts = 9)]
    #[transition(to = Done)]
    Created,
    #[state(terminal, name = "done")]
    Done,
}

fn main() {
    let def = BillingRun::definition();
    assert_eq!((def.name(), def.version()), ("billing-run", 4));
    let created = def.state("created").unwrap();
    assert_eq!(created.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(created.max_attempts, Some(9));
    assert_eq!(BillingRunState::Done.as_str(), "done");
}

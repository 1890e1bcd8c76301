use runekernel::prelude::*;

mod rules {
    pub fn big_enough(from: &super::Loan, _to: &super::Loan) -> bool {
        matches!(from, super::Loan::Requested { amount } if *amount >= 100)
    }
}

#[derive(StateMachine, Debug, PartialEq)]
enum Loan {
    #[state(initial)]
    #[transition(to = Approved, guard = rules::big_enough, label = "approve")]
    #[transition(to = Rejected)]
    Requested { amount: u32 },
    #[state(terminal)]
    Approved,
    #[state(terminal)]
    Rejected,
}

fn main() {
    assert!(Loan::Requested { amount: 500 }.can_transition_to(&Loan::Approved));
    assert!(!Loan::Requested { amount: 5 }.can_transition_to(&Loan::Approved));
    let t = Loan::definition().transition("Requested", "Approved").unwrap();
    assert_eq!(t.guard.as_deref(), Some("rules::big_enough"));
}

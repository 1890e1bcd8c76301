use runekernel::prelude::*;

#[derive(StateMachine, Debug, PartialEq)]
enum Payment {
    #[state(initial)]
    #[transition(to = Captured)]
    Authorized { card: String, amount_cents: u64 },
    #[state(terminal)]
    Captured { receipt: String },
}

fn main() {
    let value = Payment::Authorized { card: "4242".into(), amount_cents: 100 };
    let encoded = value.encode().unwrap();
    assert_eq!(Payment::decode("Authorized", encoded.payload).unwrap(), value);
}

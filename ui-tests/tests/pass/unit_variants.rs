use runekernel::prelude::*;

#[derive(StateMachine, Debug, PartialEq)]
enum Switch {
    #[state(initial)]
    #[transition(to(On, Broken))]
    Off,
    #[transition(to(Off, Broken))]
    On,
    #[state(terminal)]
    Broken,
}

fn main() {
    assert!(Switch::Off.can_transition_to(&Switch::On));
    assert_eq!(SwitchState::ALL, &[SwitchState::Off, SwitchState::On, SwitchState::Broken]);
    let encoded = Switch::On.encode().unwrap();
    assert_eq!(Switch::decode(encoded.state, encoded.payload).unwrap(), Switch::On);
}

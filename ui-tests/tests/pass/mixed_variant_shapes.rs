use runekernel::prelude::*;

#[derive(StateMachine, Debug, PartialEq)]
enum Mixed {
    #[state(initial)]
    #[transition(to(Tuple, Struct, Unit))]
    Start { id: u32 },
    #[transition(to = Unit)]
    Tuple(u8),
    #[transition(to = Unit)]
    Struct { a: bool },
    #[state(terminal)]
    Unit,
}

fn main() {
    let next: Mixed = MixedStartNext::Tuple(1).into();
    assert_eq!(next, Mixed::Tuple(1));
    let next: Mixed = MixedStartNext::Struct { a: true }.into();
    assert_eq!(next, Mixed::Struct { a: true });
}

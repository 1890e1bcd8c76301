use runekernel::StateMachine;

struct Plain;

fn definition_of<M: StateMachine>() -> &'static runekernel::MachineDef {
    M::definition()
}

fn main() {
    definition_of::<Plain>();
}

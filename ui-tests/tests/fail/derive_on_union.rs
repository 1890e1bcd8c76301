use runekernel::StateMachine;

#[derive(StateMachine)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}

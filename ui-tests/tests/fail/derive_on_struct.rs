use runekernel::StateMachine;

#[derive(StateMachine)]
struct Order {
    sku: String,
}

fn main() {}

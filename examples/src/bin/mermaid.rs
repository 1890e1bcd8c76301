//! Prints the `Order` machine's graph: Mermaid by default, `--dot` for
//! Graphviz, `--json` for the definition.

use runekernel::StateMachine;
use runekernel_examples::Order;

fn main() {
    let def = Order::definition();
    match std::env::args().nth(1).as_deref() {
        Some("--dot") => print!("{}", def.to_dot()),
        Some("--json") => println!("{:#}", def.to_json()),
        _ => print!("{}", def.to_mermaid()),
    }
}

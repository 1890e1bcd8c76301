//! How long laying out a 50-state machine takes: a pipeline of 50 states
//! where each state may retry itself, fail to a shared terminal state, or
//! loop back two states, as large real machines do.
//!
//! ```text
//! cargo bench -p runekernel-layout
//! ```
//! Prints the minimum, median and maximum of 200 layouts.

use std::hint::black_box;
use std::time::{Duration, Instant};

use runekernel_layout::{layout, Graph, Spacing};

fn machine(states: usize) -> Graph {
    let mut graph = Graph::new();
    let ids: Vec<usize> = (0..states)
        .map(|n| graph.node(60.0 + (n % 7) as f64 * 12.0, 34.0))
        .collect();
    let failed = ids[states - 1];
    for n in 0..states - 2 {
        let _ = graph.edge(ids[n], ids[n + 1]);
        let _ = graph.edge(ids[n], failed);
        if n % 5 == 0 {
            let _ = graph.edge(ids[n], ids[n]);
        }
        if n % 4 == 3 {
            let _ = graph.edge(ids[n], ids[n - 2]);
        }
        if n % 6 == 1 && n + 3 < states - 1 {
            let _ = graph.edge(ids[n], ids[n + 3]);
        }
    }
    graph
}

fn main() {
    let graph = machine(50);
    let spacing = Spacing::default();
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            black_box(layout(black_box(&graph), &spacing));
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "layout of a 50-state machine ({} edges): min {:?}, median {:?}, max {:?} over {} runs",
        graph.edges().len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
}

//! Properties every layout keeps, on random graphs with cycles, self-loops
//! and parallel edges.

use proptest::prelude::*;
use runekernel_layout::{layout, EdgeKind, Graph, Spacing};

const TOLERANCE: f64 = 1e-6;

fn graphs() -> impl Strategy<Value = Graph> {
    (1usize..40)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec((10.0f64..220.0, 16.0f64..60.0), n),
                proptest::collection::vec((0..n, 0..n), 0..(n * 2 + 1)),
            )
        })
        .prop_map(|(sizes, edges)| {
            let mut graph = Graph::new();
            for (w, h) in sizes {
                graph.node(w, h);
            }
            for (a, b) in edges {
                graph.edge(a, b).unwrap();
            }
            graph
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_same_graph_gets_the_same_layout(graph in graphs()) {
        prop_assert_eq!(layout(&graph, &Spacing::default()), layout(&graph.clone(), &Spacing::default()));
    }

    #[test]
    fn no_two_nodes_overlap(graph in graphs()) {
        let drawn = layout(&graph, &Spacing::default());
        prop_assert_eq!(drawn.nodes.len(), graph.node_count());
        for (i, a) in drawn.nodes.iter().enumerate() {
            for b in &drawn.nodes[i + 1..] {
                prop_assert!(!a.overlaps(b), "{:?} overlaps {:?}", a, b);
            }
        }
    }

    #[test]
    fn every_edge_runs_from_its_source_to_its_target(graph in graphs()) {
        let drawn = layout(&graph, &Spacing::default());
        prop_assert_eq!(drawn.edges.len(), graph.edges().len());
        for (&(from, to), route) in graph.edges().iter().zip(&drawn.edges) {
            let (first, last) = (route.points[0], route.points[route.points.len() - 1]);
            prop_assert!(route.points.len() >= 2);
            prop_assert!(drawn.nodes[from].on_border(first, TOLERANCE), "starts off its source");
            prop_assert!(drawn.nodes[to].on_border(last, TOLERANCE), "ends off its target");
            let expected = if from == to {
                EdgeKind::SelfLoop
            } else if drawn.nodes[to].y > drawn.nodes[from].y {
                EdgeKind::Forward
            } else {
                EdgeKind::Back
            };
            prop_assert_eq!(route.kind, expected);
            // Between its ends, a route passes through no node.
            for point in &route.points[1..route.points.len() - 1] {
                for node in &drawn.nodes {
                    let inside = point.x > node.x + TOLERANCE
                        && point.x < node.x + node.width - TOLERANCE
                        && point.y > node.y + TOLERANCE
                        && point.y < node.y + node.height - TOLERANCE;
                    prop_assert!(!inside, "a bend of an edge lies inside {:?}", node);
                }
            }
        }
    }

    #[test]
    fn everything_fits_in_the_drawing(graph in graphs()) {
        let drawn = layout(&graph, &Spacing::default());
        for node in &drawn.nodes {
            prop_assert!(node.x >= 0.0 && node.y >= 0.0);
            prop_assert!(node.x + node.width <= drawn.width + TOLERANCE);
            prop_assert!(node.y + node.height <= drawn.height + TOLERANCE);
        }
        for point in drawn.edges.iter().flat_map(|e| e.points.iter().chain([&e.label])) {
            prop_assert!(point.x.is_finite() && point.y.is_finite());
            prop_assert!(point.x >= 0.0 && point.x <= drawn.width + TOLERANCE);
            prop_assert!(point.y >= 0.0 && point.y <= drawn.height + TOLERANCE);
        }
    }
}

#[test]
fn an_edge_to_a_missing_node_is_refused() {
    let mut graph = Graph::new();
    graph.node(10.0, 10.0);
    let error = graph.edge(0, 3).unwrap_err();
    assert_eq!(error.to_string(), "an edge names node 3, but the graph has 1 nodes");
}

#[test]
fn an_empty_graph_is_just_its_margins() {
    let drawn = layout(&Graph::new(), &Spacing::default());
    assert!(drawn.nodes.is_empty() && drawn.edges.is_empty());
    assert_eq!((drawn.width, drawn.height), (40.0, 40.0));
}

//! Routes: each node's box, and each edge's polyline from its source's
//! border to its target's, through the lanes it was given in the layers it
//! crosses.

use std::collections::BTreeMap;

use crate::geometry::{Point, Rect};
use crate::layered::Layered;
use crate::place::Placed;
use crate::{EdgeKind, EdgeRoute, Graph, Layout, Spacing};

/// Horizontal distance between edges that join the same two nodes.
const PARALLEL_STEP: f64 = 14.0;

pub(crate) fn route(graph: &Graph, g: &Layered, placed: &Placed, spacing: &Spacing) -> Layout {
    let nodes: Vec<Rect> = (0..graph.node_count())
        .map(|v| {
            let vertex = &g.vertices[v];
            let layer = g.layer_of[v];
            Rect {
                x: placed.x[v] - vertex.width / 2.0,
                y: placed.layer_top[layer] + (placed.layer_height[layer] - vertex.height) / 2.0,
                width: vertex.width,
                height: vertex.height,
            }
        })
        .collect();

    // Edges joining the same two adjacent nodes are spread apart; so are a
    // node's self-loops, nested.
    let mut parallel: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (edge, chain) in g.chains.iter().enumerate() {
        let key = match chain {
            Some(chain) if chain.len() == 2 => (chain[0], chain[1]),
            Some(_) => continue,
            None => (graph.edges[edge].0, graph.edges[edge].0),
        };
        parallel.entry(key).or_default().push(edge);
    }
    let spread = |edge: usize, key: (usize, usize)| -> (usize, usize) {
        let group = &parallel[&key];
        let k = group.iter().position(|&e| e == edge).unwrap_or(0);
        (k, group.len())
    };

    let edges = g
        .chains
        .iter()
        .enumerate()
        .map(|(edge, chain)| match chain {
            None => {
                let node = graph.edges[edge].0;
                let (k, n) = spread(edge, (node, node));
                self_loop(&nodes[node], k, n, spacing)
            }
            Some(chain) => {
                let (upper, lower) = (chain[0], chain[chain.len() - 1]);
                // Parallel edges are spread apart, and their labels put at
                // different heights along them so they do not overlap.
                let (offset, along) = if chain.len() == 2 {
                    let (k, n) = spread(edge, (upper, lower));
                    let narrowest = nodes[upper].width.min(nodes[lower].width);
                    let step = PARALLEL_STEP.min(narrowest / (n as f64 + 1.0));
                    let offset = (k as f64 - (n as f64 - 1.0) / 2.0) * step;
                    (offset, (k + 1) as f64 / (n + 1) as f64)
                } else {
                    (0.0, 0.5)
                };
                let (from, to) = (&nodes[upper], &nodes[lower]);
                let mut points = vec![Point {
                    x: from.center().x + offset,
                    y: from.y + from.height,
                }];
                for &lane in &chain[1..chain.len() - 1] {
                    let layer = g.layer_of[lane];
                    let top = placed.layer_top[layer];
                    points.push(Point {
                        x: placed.x[lane],
                        y: top,
                    });
                    points.push(Point {
                        x: placed.x[lane],
                        y: top + placed.layer_height[layer],
                    });
                }
                points.push(Point {
                    x: to.center().x + offset,
                    y: to.y,
                });
                let label = label_point(&points, along);
                let kind = if g.reversed[edge] {
                    points.reverse();
                    EdgeKind::Back
                } else {
                    EdgeKind::Forward
                };
                EdgeRoute { points, label, kind }
            }
        })
        .collect();
    Layout {
        nodes,
        edges,
        width: placed.width,
        height: placed.height,
    }
}

/// The `k`th of `n` loops on `node`'s right: the later, the wider.
fn self_loop(node: &Rect, k: usize, n: usize, spacing: &Spacing) -> EdgeRoute {
    let share = (k + 1) as f64 / n as f64;
    let reach = spacing.loop_size * share;
    let rise = node.height / 2.0 * (k + 1) as f64 / (n + 1) as f64;
    let right = node.x + node.width;
    let middle = node.center().y;
    EdgeRoute {
        points: vec![
            Point {
                x: right,
                y: middle - rise,
            },
            Point {
                x: right + reach,
                y: middle - rise,
            },
            Point {
                x: right + reach,
                y: middle + rise,
            },
            Point {
                x: right,
                y: middle + rise,
            },
        ],
        label: Point {
            x: right + reach,
            y: middle,
        },
        kind: EdgeKind::SelfLoop,
    }
}

/// Where a label goes on a route drawn downward: on its middle segment
/// (the only one of a direct edge; the lane through the middle layer of a
/// longer one), at fraction `along` of it.
fn label_point(points: &[Point], along: f64) -> Point {
    let middle = (points.len() - 1) / 2;
    let (a, b) = (points[middle], points[middle + 1]);
    Point {
        x: a.x + (b.x - a.x) * along,
        y: a.y + (b.y - a.y) * along,
    }
}

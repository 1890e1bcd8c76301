//! Crossing reduction: each layer reordered by the mean position of its
//! vertices' neighbours in the layer just swept, down then up, keeping the
//! order with the fewest crossings seen.

use crate::layered::Layered;

/// Down-and-up sweep pairs tried.
const SWEEPS: usize = 6;

pub(crate) fn order(g: &mut Layered) {
    let mut best = g.layers.clone();
    let mut best_crossings = crossings(g, &best);
    for sweep in 0..SWEEPS * 2 {
        let downward = sweep % 2 == 0;
        let layers: Vec<usize> = if downward {
            (1..g.layers.len()).collect()
        } else {
            (0..g.layers.len().saturating_sub(1)).rev().collect()
        };
        for layer in layers {
            let fixed = if downward { layer - 1 } else { layer + 1 };
            let position = positions(g, &g.layers[fixed]);
            let neighbours = if downward { &g.above } else { &g.below };
            let mut keyed: Vec<(f64, usize, usize)> = g.layers[layer]
                .iter()
                .enumerate()
                .map(|(at, &v)| {
                    let near = &neighbours[v];
                    let key = if near.is_empty() {
                        at as f64
                    } else {
                        near.iter().map(|&n| position[n] as f64).sum::<f64>() / near.len() as f64
                    };
                    (key, at, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            g.layers[layer] = keyed.into_iter().map(|(_, _, v)| v).collect();
        }
        let now = crossings(g, &g.layers);
        if now < best_crossings {
            best_crossings = now;
            best = g.layers.clone();
        }
        if best_crossings == 0 {
            break;
        }
    }
    g.layers = best;
}

/// Each vertex's index within its layer, for the vertices of `layer`
/// (others map to 0).
fn positions(g: &Layered, layer: &[usize]) -> Vec<usize> {
    let mut position = vec![0; g.vertices.len()];
    for (at, &v) in layer.iter().enumerate() {
        position[v] = at;
    }
    position
}

/// How many pairs of segments cross, over every pair of adjacent layers.
pub(crate) fn crossings(g: &Layered, layers: &[Vec<usize>]) -> usize {
    let mut total = 0;
    for pair in layers.windows(2) {
        let upper = positions(g, &pair[0]);
        let lower = positions(g, &pair[1]);
        let mut segments: Vec<(usize, usize)> = pair[0]
            .iter()
            .flat_map(|&u| g.below[u].iter().map(move |&l| (u, l)))
            .map(|(u, l)| (upper[u], lower[l]))
            .collect();
        segments.sort_unstable();
        for (i, a) in segments.iter().enumerate() {
            total += segments[i + 1..].iter().filter(|b| b.0 > a.0 && b.1 < a.1).count();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rank, Graph, Spacing};

    fn layered(nodes: usize, edges: &[(usize, usize)]) -> Layered {
        let mut graph = Graph::new();
        for _ in 0..nodes {
            graph.node(10.0, 10.0);
        }
        for &(a, b) in edges {
            graph.edge(a, b).unwrap();
        }
        let ranks = rank::ranks(nodes, graph.edges());
        Layered::new(&graph, &ranks, &Spacing::default())
    }

    #[test]
    fn untangles_a_crossed_pair() {
        // 0 -> 3 and 1 -> 2 cross when layer 1 is [2, 3].
        let mut g = layered(4, &[(0, 3), (1, 2)]);
        assert_eq!(crossings(&g, &g.layers), 1);
        order(&mut g);
        assert_eq!(crossings(&g, &g.layers), 0);
    }
}

//! The layered graph the later stages work on: the real nodes, plus a dummy
//! vertex wherever an edge crosses a layer, so every segment joins two
//! adjacent layers.

use crate::rank::Ranks;
use crate::{Graph, Spacing};

/// A vertex of one layer: a real node or an edge's lane through a layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Vertex {
    /// The node it draws, or `None` for an edge's lane.
    pub(crate) node: Option<usize>,
    pub(crate) width: f64,
    pub(crate) height: f64,
    /// Room kept on its right for self-loops.
    pub(crate) right_extra: f64,
}

/// Vertices in layers. Vertex `i < node count` is node `i`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layered {
    pub(crate) vertices: Vec<Vertex>,
    pub(crate) layer_of: Vec<usize>,
    /// Each layer's vertices, left to right.
    pub(crate) layers: Vec<Vec<usize>>,
    /// Per edge, the vertices it passes from the upper end to the lower
    /// one; `None` for a self-loop.
    pub(crate) chains: Vec<Option<Vec<usize>>>,
    /// Per edge, whether it runs upward (it was turned to break a cycle).
    pub(crate) reversed: Vec<bool>,
    /// Each vertex's neighbours one layer up.
    pub(crate) above: Vec<Vec<usize>>,
    /// Each vertex's neighbours one layer down.
    pub(crate) below: Vec<Vec<usize>>,
}

impl Layered {
    pub(crate) fn new(graph: &Graph, ranks: &Ranks, spacing: &Spacing) -> Self {
        let mut vertices: Vec<Vertex> = graph
            .sizes
            .iter()
            .enumerate()
            .map(|(node, &(width, height))| Vertex {
                node: Some(node),
                width,
                height,
                right_extra: 0.0,
            })
            .collect();
        let mut layer_of = ranks.layer.clone();
        let mut chains = Vec::with_capacity(graph.edges.len());
        for (index, &(from, to)) in graph.edges.iter().enumerate() {
            if from == to {
                vertices[from].right_extra = spacing.loop_size;
                chains.push(None);
                continue;
            }
            let (upper, lower) = if ranks.reversed[index] { (to, from) } else { (from, to) };
            let mut chain = vec![upper];
            for layer in ranks.layer[upper] + 1..ranks.layer[lower] {
                vertices.push(Vertex {
                    node: None,
                    width: spacing.lane_width,
                    height: 0.0,
                    right_extra: 0.0,
                });
                layer_of.push(layer);
                chain.push(vertices.len() - 1);
            }
            chain.push(lower);
            chains.push(Some(chain));
        }
        let depth = layer_of.iter().max().map_or(0, |&l| l + 1);
        let mut layers = vec![Vec::new(); depth];
        for (vertex, &layer) in layer_of.iter().enumerate() {
            layers[layer].push(vertex);
        }
        let mut above = vec![Vec::new(); vertices.len()];
        let mut below = vec![Vec::new(); vertices.len()];
        for chain in chains.iter().flatten() {
            for pair in chain.windows(2) {
                below[pair[0]].push(pair[1]);
                above[pair[1]].push(pair[0]);
            }
        }
        Layered {
            vertices,
            layer_of,
            layers,
            chains,
            reversed: ranks.reversed.clone(),
            above,
            below,
        }
    }
}

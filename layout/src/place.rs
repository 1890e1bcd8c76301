//! Coordinates: layers stacked top to bottom; within a layer, vertices in
//! their order, each pulled toward the mean of its neighbours and never
//! closer to the next than the gap.

use crate::layered::Layered;
use crate::Spacing;

/// Rounds of pulling vertices toward their neighbours.
const ROUNDS: usize = 8;

/// Where each vertex and layer went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placed {
    /// Each vertex's horizontal center.
    pub(crate) x: Vec<f64>,
    /// Each layer's top edge.
    pub(crate) layer_top: Vec<f64>,
    /// Each layer's height: its tallest vertex.
    pub(crate) layer_height: Vec<f64>,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

pub(crate) fn place(g: &Layered, spacing: &Spacing) -> Placed {
    let separation = |left: usize, right: usize| {
        let (a, b) = (&g.vertices[left], &g.vertices[right]);
        let gap = if a.node.is_some() && b.node.is_some() {
            spacing.node_gap
        } else {
            spacing.node_gap / 2.0
        };
        a.width / 2.0 + a.right_extra + gap + b.width / 2.0
    };

    let mut x = vec![0.0; g.vertices.len()];
    for layer in &g.layers {
        let mut at = 0.0;
        for (i, &v) in layer.iter().enumerate() {
            if i > 0 {
                at += separation(layer[i - 1], v);
            }
            x[v] = at;
        }
    }
    let sweep: Vec<usize> = (0..g.layers.len()).chain((0..g.layers.len()).rev()).collect();
    for _ in 0..ROUNDS {
        for &layer in &sweep {
            let vertices = &g.layers[layer];
            let desired: Vec<f64> = vertices
                .iter()
                .map(|&v| {
                    let near: Vec<usize> = g.above[v].iter().chain(&g.below[v]).copied().collect();
                    if near.is_empty() {
                        x[v]
                    } else {
                        near.iter().map(|&n| x[n]).sum::<f64>() / near.len() as f64
                    }
                })
                .collect();
            // The closest placement keeping the gaps, once pushing right and
            // once pushing left; their mean keeps the gaps too.
            let mut left = desired.clone();
            for i in 1..vertices.len() {
                left[i] = left[i].max(left[i - 1] + separation(vertices[i - 1], vertices[i]));
            }
            let mut right = desired;
            for i in (0..vertices.len().saturating_sub(1)).rev() {
                right[i] = right[i].min(right[i + 1] - separation(vertices[i], vertices[i + 1]));
            }
            for (i, &v) in vertices.iter().enumerate() {
                x[v] = (left[i] + right[i]) / 2.0;
            }
        }
    }

    let left_edge = g
        .vertices
        .iter()
        .zip(&x)
        .map(|(v, &c)| c - v.width / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = if left_edge.is_finite() {
        spacing.margin - left_edge
    } else {
        0.0
    };
    for c in &mut x {
        *c += shift;
    }
    let right_edge = g
        .vertices
        .iter()
        .zip(&x)
        .map(|(v, &c)| c + v.width / 2.0 + v.right_extra)
        .fold(spacing.margin, f64::max);

    let mut layer_top = Vec::with_capacity(g.layers.len());
    let mut layer_height = Vec::with_capacity(g.layers.len());
    let mut top = spacing.margin;
    for layer in &g.layers {
        let height = layer.iter().map(|&v| g.vertices[v].height).fold(0.0, f64::max);
        layer_top.push(top);
        layer_height.push(height);
        top += height + spacing.layer_gap;
    }
    let bottom = if g.layers.is_empty() {
        spacing.margin
    } else {
        top - spacing.layer_gap
    };
    Placed {
        x,
        layer_top,
        layer_height,
        width: right_edge + spacing.margin,
        height: bottom + spacing.margin,
    }
}

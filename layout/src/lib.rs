//! A deterministic layered layout of directed graphs, for drawing state
//! machines: states top to bottom in the order transitions lead, edges routed
//! around the states they pass, cycles and self-loops drawn legibly.
//!
//! It is the classic Sugiyama pipeline, one module a stage:
//! 1. `rank.rs`: a depth-first search reverses the edges that close cycles,
//!    then every node gets the layer of its longest path from a source;
//! 2. `layered.rs`: an edge that spans several layers gets a dummy node in
//!    each, so it is routed between the nodes of the layers it crosses;
//! 3. `order.rs`: barycenter sweeps order each layer to cut crossings;
//! 4. `place.rs`: horizontal positions pulled toward neighbours, never closer
//!    than the gap;
//! 5. `route.rs`: one polyline per edge, from its source's border to its
//!    target's, with a loop beside the node for a self-loop.
//!
//! The same graph always gets the same layout (no hashing, no randomness),
//! on every target, so it runs natively in tests and in the browser as
//! WebAssembly.
//!
//! ```
//! use runekernel_layout::{layout, EdgeKind, Graph, Spacing};
//!
//! let mut graph = Graph::new();
//! let created = graph.node(80.0, 30.0);
//! let paid = graph.node(60.0, 30.0);
//! let shipped = graph.node(70.0, 30.0);
//! graph.edge(created, paid)?;
//! graph.edge(paid, shipped)?;
//! graph.edge(paid, created)?; // a cycle: drawn as a back edge
//! graph.edge(shipped, shipped)?; // a self-loop
//!
//! let drawn = layout(&graph, &Spacing::default());
//! assert!(drawn.nodes[created].y < drawn.nodes[paid].y);
//! assert_eq!(drawn.edges[2].kind, EdgeKind::Back);
//! assert_eq!(drawn.edges[3].kind, EdgeKind::SelfLoop);
//! # Ok::<(), runekernel_layout::LayoutError>(())
//! ```

#![warn(missing_docs)]

mod geometry;
mod layered;
mod order;
mod place;
mod rank;
mod route;

pub use geometry::{Point, Rect};

/// A graph to lay out: nodes with their sizes, and directed edges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    sizes: Vec<(f64, f64)>,
    edges: Vec<(usize, usize)>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// Adds a node drawn `width` by `height` and returns its index. A size
    /// that is negative or not finite counts as 0.
    pub fn node(&mut self, width: f64, height: f64) -> usize {
        let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        self.sizes.push((clean(width), clean(height)));
        self.sizes.len() - 1
    }

    /// Adds an edge from node `from` to node `to` (the same node for a
    /// self-loop) and returns its index. Several edges may join the same
    /// two nodes.
    ///
    /// # Errors
    /// [`LayoutError::UnknownNode`] if either index is not a node's.
    pub fn edge(&mut self, from: usize, to: usize) -> Result<usize, LayoutError> {
        for node in [from, to] {
            if node >= self.sizes.len() {
                return Err(LayoutError::UnknownNode {
                    node,
                    nodes: self.sizes.len(),
                });
            }
        }
        self.edges.push((from, to));
        Ok(self.edges.len() - 1)
    }

    /// How many nodes it has.
    pub fn node_count(&self) -> usize {
        self.sizes.len()
    }

    /// Its edges, as `(from, to)` in the order they were added.
    pub fn edges(&self) -> &[(usize, usize)] {
        &self.edges
    }
}

/// What went wrong building a [`Graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// An edge named a node index the graph does not have.
    UnknownNode {
        /// The index given.
        node: usize,
        /// How many nodes the graph has.
        nodes: usize,
    },
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::UnknownNode { node, nodes } => {
                write!(f, "an edge names node {node}, but the graph has {nodes} nodes")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

/// The distances a layout keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spacing {
    /// Least horizontal space between two nodes (or edges) of a layer.
    pub node_gap: f64,
    /// Vertical space between two layers, where edges run.
    pub layer_gap: f64,
    /// How far a self-loop reaches beside its node.
    pub loop_size: f64,
    /// The width of the lane an edge takes through a layer it crosses.
    pub lane_width: f64,
    /// Space around the whole drawing.
    pub margin: f64,
}

impl Default for Spacing {
    fn default() -> Self {
        Spacing {
            node_gap: 40.0,
            layer_gap: 70.0,
            loop_size: 36.0,
            lane_width: 24.0,
            margin: 20.0,
        }
    }
}

/// How an edge is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Downward, the way the layers go.
    Forward,
    /// Upward: an edge that closes a cycle, such as a retry loop.
    Back,
    /// From a node to itself, as a loop on the node's right.
    SelfLoop,
}

/// One edge's drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRoute {
    /// The polyline from a point on the source's border to a point on the
    /// target's border; at least two points.
    pub points: Vec<Point>,
    /// Where its label goes: on the route, about halfway.
    pub label: Point,
    /// Which way it runs.
    pub kind: EdgeKind,
}

/// A laid-out graph: one rectangle per node and one route per edge, in the
/// [`Graph`]'s order, all inside `width` by `height` with the origin at the
/// top left.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Each node's box.
    pub nodes: Vec<Rect>,
    /// Each edge's route.
    pub edges: Vec<EdgeRoute>,
    /// The drawing's width, margins included.
    pub width: f64,
    /// The drawing's height, margins included.
    pub height: f64,
}

/// Lays `graph` out with `spacing`. The same input always gives the same
/// output.
pub fn layout(graph: &Graph, spacing: &Spacing) -> Layout {
    let ranks = rank::ranks(graph.sizes.len(), &graph.edges);
    let mut layered = layered::Layered::new(graph, &ranks, spacing);
    order::order(&mut layered);
    let placed = place::place(&layered, spacing);
    route::route(graph, &layered, &placed, spacing)
}

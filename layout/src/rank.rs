//! Layers: which edges to turn around so the graph has no cycle, and each
//! node's layer once it has none.

/// Each node's layer (0 at the top) and, per edge, whether it was turned
/// around to break a cycle. Self-loops are never turned and do not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ranks {
    pub(crate) layer: Vec<usize>,
    pub(crate) reversed: Vec<bool>,
}

/// Breaks cycles by a depth-first search from each node in index order (so
/// the first nodes, the initial states when the caller lists them first, end
/// up on top): an edge into a node still on the search's stack closes a
/// cycle and is turned around. Then a node's layer is the length of the
/// longest path to it from a node with no incoming edge.
pub(crate) fn ranks(nodes: usize, edges: &[(usize, usize)]) -> Ranks {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nodes];
    for (index, &(from, to)) in edges.iter().enumerate() {
        if from != to {
            out[from].push((to, index));
        }
    }
    let reversed = back_edges(nodes, edges.len(), &out);

    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut incoming = vec![0usize; nodes];
    for (index, &(from, to)) in edges.iter().enumerate() {
        if from == to {
            continue;
        }
        let (a, b) = if reversed[index] { (to, from) } else { (from, to) };
        successors[a].push(b);
        incoming[b] += 1;
    }
    // Kahn's algorithm with the ready nodes taken in index order.
    let mut layer = vec![0usize; nodes];
    let mut ready: std::collections::BTreeSet<usize> = (0..nodes).filter(|&n| incoming[n] == 0).collect();
    while let Some(node) = ready.pop_first() {
        for &next in &successors[node] {
            layer[next] = layer[next].max(layer[node] + 1);
            incoming[next] -= 1;
            if incoming[next] == 0 {
                ready.insert(next);
            }
        }
    }
    Ranks { layer, reversed }
}

/// The edges that close a cycle in an iterative depth-first search.
fn back_edges(nodes: usize, edge_count: usize, out: &[Vec<(usize, usize)>]) -> Vec<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; nodes];
    let mut reversed = vec![false; edge_count];
    for root in 0..nodes {
        if mark[root] != Mark::New {
            continue;
        }
        // (node, index of the next outgoing edge to follow)
        let mut stack = vec![(root, 0usize)];
        mark[root] = Mark::OnStack;
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            match out[node].get(next) {
                Some(&(to, edge)) => {
                    top.1 += 1;
                    match mark[to] {
                        Mark::New => {
                            mark[to] = Mark::OnStack;
                            stack.push((to, 0));
                        }
                        Mark::OnStack => reversed[edge] = true,
                        Mark::Done => {}
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }
    reversed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_takes_one_layer_per_node() {
        let r = ranks(3, &[(0, 1), (1, 2)]);
        assert_eq!(r.layer, vec![0, 1, 2]);
        assert_eq!(r.reversed, vec![false, false]);
    }

    #[test]
    fn a_cycle_turns_the_edge_that_closes_it() {
        let r = ranks(3, &[(0, 1), (1, 2), (2, 1)]);
        assert_eq!(r.reversed, vec![false, false, true]);
        assert_eq!(r.layer, vec![0, 1, 2]);
    }

    #[test]
    fn a_self_loop_changes_nothing() {
        let r = ranks(2, &[(0, 0), (0, 1)]);
        assert_eq!(r.layer, vec![0, 1]);
        assert_eq!(r.reversed, vec![false, false]);
    }

    #[test]
    fn a_node_goes_below_its_longest_path() {
        let r = ranks(4, &[(0, 1), (1, 2), (0, 2), (2, 3)]);
        assert_eq!(r.layer, vec![0, 1, 2, 3]);
    }
}

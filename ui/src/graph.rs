//! A machine drawn as SVG: every declared state (reached or not) and every
//! declared transition, laid out by `runekernel-layout`, with live counts
//! and, for one job, the path it took.

use std::fmt::Write;

use runekernel_layout::{layout, EdgeKind, Graph, Layout, Spacing};

use crate::html::{escape, Num};
use crate::model::{Machine, Path, STATUSES};

/// A state's box: tall enough for its name and a line of counts.
const NODE_HEIGHT: f64 = 46.0;
/// Narrowest box: room for five counts.
const MIN_NODE_WIDTH: f64 = 150.0;
/// Width per character of a state's name, at the UI's font size.
const CHAR_WIDTH: f64 = 8.5;

/// What to mark on the graph besides the counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks<'a> {
    /// A job's path: its states and edges are highlighted.
    pub path: Option<&'a Path>,
    /// The job's current state.
    pub current: Option<&'a str>,
}

/// The states in drawing order: initial states first, so the layout puts
/// them on top, then as declared.
fn drawing_order(machine: &Machine) -> Vec<usize> {
    let mut order: Vec<usize> = (0..machine.states.len())
        .filter(|&i| machine.states[i].initial)
        .collect();
    order.extend((0..machine.states.len()).filter(|&i| !machine.states[i].initial));
    order
}

/// The machine's layout: node `i` is `machine.states[order[i]]`, edge `j`
/// is `machine.transitions[edges[j]]` (transitions naming an unknown state
/// are left out).
fn lay_out(machine: &Machine) -> (Vec<usize>, Vec<usize>, Layout) {
    let order = drawing_order(machine);
    let mut graph = Graph::new();
    for &i in &order {
        let width = (machine.states[i].name.chars().count() as f64 * CHAR_WIDTH + 28.0).max(MIN_NODE_WIDTH);
        graph.node(width, NODE_HEIGHT);
    }
    let node_of = |name: &str| order.iter().position(|&i| machine.states[i].name == name);
    let mut edges = Vec::new();
    for (j, t) in machine.transitions.iter().enumerate() {
        if let (Some(from), Some(to)) = (node_of(&t.from), node_of(&t.to)) {
            if graph.edge(from, to).is_ok() {
                edges.push(j);
            }
        }
    }
    let drawn = layout(&graph, &Spacing::default());
    (order, edges, drawn)
}

/// The counts line of one state: one coloured figure per status it has
/// jobs in, or a dash when it has none.
pub fn counts_markup(machine: &Machine, state: &str) -> String {
    let mut out = String::new();
    for status in STATUSES {
        let n = machine.count(state, status);
        if n > 0 {
            let _ = write!(
                out,
                r#"<tspan class="count s-{status}" data-status="{status}">● {n}</tspan> "#
            );
        }
    }
    if out.is_empty() {
        out.push_str(r#"<tspan class="count none">–</tspan>"#);
    }
    out
}

/// The whole `<svg>` element.
pub fn svg(machine: &Machine, marks: Marks<'_>) -> String {
    let (order, edges, drawn) = lay_out(machine);
    let taken = |from: &str, to: &str| {
        marks
            .path
            .is_some_and(|p| p.edges.iter().any(|(a, b)| a == from && b == to))
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="graph" data-machine="{}" viewBox="0 0 {w} {h}" height="{h}" data-width="{w}" data-height="{h}" preserveAspectRatio="xMidYMin meet" xmlns="http://www.w3.org/2000/svg">"#,
        escape(&machine.name),
        w = drawn.width.ceil() as i64,
        h = drawn.height.ceil() as i64,
    );
    out.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/></marker></defs>"#,
    );
    out.push_str(r#"<g class="viewport">"#);
    for (route, &j) in drawn.edges.iter().zip(&edges) {
        let t = &machine.transitions[j];
        let kind = match route.kind {
            EdgeKind::Forward => "forward",
            EdgeKind::Back => "back",
            EdgeKind::SelfLoop => "self",
        };
        let mut d = String::new();
        for (k, p) in route.points.iter().enumerate() {
            let _ = write!(d, "{}{},{}", if k == 0 { "M" } else { "L" }, Num(p.x), Num(p.y));
        }
        let label = match (&t.label, &t.guard) {
            (Some(l), Some(g)) => format!("{l} [{g}]"),
            (Some(l), None) => l.clone(),
            (None, Some(g)) => format!("[{g}]"),
            (None, None) => String::new(),
        };
        let _ = write!(
            out,
            r#"<g class="edge {kind}{taken}" data-edge="{j}" data-from="{from}" data-to="{to}"><path d="{d}" marker-end="url(#arrow)"/>"#,
            taken = if taken(&t.from, &t.to) { " taken" } else { "" },
            from = escape(&t.from),
            to = escape(&t.to),
        );
        if !label.is_empty() {
            let _ = write!(
                out,
                r#"<text class="edge-label" x="{}" y="{}">{}</text>"#,
                Num(route.label.x + 4.0),
                Num(route.label.y - 3.0),
                escape(&label)
            );
        }
        out.push_str("</g>");
    }
    for (rect, &i) in drawn.nodes.iter().zip(&order) {
        let state = &machine.states[i];
        let mut class = String::from("state");
        for (on, name) in [
            (state.initial, " initial"),
            (state.terminal, " terminal"),
            (marks.path.is_some_and(|p| p.visited.contains(&state.name)), " visited"),
            (marks.current == Some(state.name.as_str()), " current"),
        ] {
            if on {
                class.push_str(name);
            }
        }
        let name = escape(&state.name);
        let _ = write!(
            out,
            r#"<g class="{class}" data-state="{name}" transform="translate({},{})"><title>{name}</title><rect class="box" width="{w}" height="{h}" rx="8"/>"#,
            Num(rect.x),
            Num(rect.y),
            w = Num(rect.width),
            h = Num(rect.height),
        );
        if state.terminal {
            let _ = write!(
                out,
                r#"<rect class="inner" x="3" y="3" width="{}" height="{}" rx="6"/>"#,
                Num(rect.width - 6.0),
                Num(rect.height - 6.0)
            );
        }
        if state.initial {
            out.push_str(r#"<circle class="start" cx="-9" cy="9" r="5"/>"#);
        }
        let _ = write!(
            out,
            r#"<text class="name" x="{}" y="19">{name}</text><text class="counts" data-counts="{name}" x="{}" y="37">{}</text></g>"#,
            Num(rect.width / 2.0),
            Num(rect.width / 2.0),
            counts_markup(machine, &state.name)
        );
    }
    out.push_str("</g></svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice() -> Machine {
        serde_json::from_value(serde_json::json!({
            "name": "invoice",
            "states": [
                {"name": "Drafted", "shape": "struct", "initial": true, "terminal": false},
                {"name": "Sent", "shape": "struct", "initial": false, "terminal": false},
                {"name": "Reminded", "shape": "struct", "initial": false, "terminal": false},
                {"name": "Paid", "shape": "unit", "initial": false, "terminal": true},
                {"name": "Never<Reached>", "shape": "unit", "initial": false, "terminal": true}
            ],
            "transitions": [
                {"from": "Drafted", "to": "Sent", "label": "send"},
                {"from": "Sent", "to": "Paid"},
                {"from": "Sent", "to": "Reminded", "label": "overdue"},
                {"from": "Reminded", "to": "Sent", "guard": "again"},
                {"from": "Reminded", "to": "Reminded"},
                {"from": "Reminded", "to": "Never<Reached>"}
            ],
            "counts": {"Sent": {"pending": 3, "failed": 1}}
        }))
        .unwrap()
    }

    #[test]
    fn draws_every_state_and_edge_once() {
        let svg = svg(&invoice(), Marks::default());
        assert_eq!(svg.matches("data-state=").count(), 5);
        assert_eq!(svg.matches("data-edge=").count(), 6);
        assert!(
            svg.contains(r#"data-state="Never&lt;Reached&gt;""#),
            "names are escaped"
        );
        assert!(svg.contains(r#"class="edge back""#), "the retry loop runs upward");
        assert!(svg.contains(r#"class="edge self""#));
        assert!(svg.contains("overdue") && svg.contains("[again]"));
        assert!(svg.contains(r#"<tspan class="count s-pending" data-status="pending">● 3</tspan>"#));
    }

    #[test]
    fn marks_a_jobs_path_and_current_state() {
        let path = Path {
            visited: vec!["Drafted".into(), "Sent".into()],
            edges: vec![("Drafted".into(), "Sent".into())],
        };
        let svg = svg(
            &invoice(),
            Marks {
                path: Some(&path),
                current: Some("Sent"),
            },
        );
        assert_eq!(svg.matches(" taken").count(), 1);
        assert!(svg.contains(r#"class="state initial visited" data-state="Drafted""#));
        assert!(svg.contains(r#"class="state visited current" data-state="Sent""#));
    }
}

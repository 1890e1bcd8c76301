//! Renderings of a [`MachineDef`]: Graphviz DOT, Mermaid and JSON.

use std::fmt::Write;

use super::definition::MachineDef;

impl MachineDef {
    /// The graph in Graphviz DOT. Initial state: bold; terminal states:
    /// double circles; edges carry their label and guard.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph {} {{\n    rankdir=LR;\n", quote(self.name()));
        for s in self.states() {
            let shape = if s.terminal { "doublecircle" } else { "circle" };
            let style = if s.initial { ", style=bold" } else { "" };
            let _ = writeln!(out, "    {} [shape={shape}{style}];", quote(&s.name));
        }
        for t in self.transitions() {
            let label = edge_label(t.label.as_deref(), t.guard.as_deref());
            let attrs = if label.is_empty() {
                String::new()
            } else {
                format!(" [label={}]", quote(&label))
            };
            let _ = writeln!(out, "    {} -> {}{attrs};", quote(&t.from), quote(&t.to));
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid `stateDiagram-v2`.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        let _ = writeln!(out, "    [*] --> {}", mermaid_id(&self.initial().name));
        for t in self.transitions() {
            let label = edge_label(t.label.as_deref(), t.guard.as_deref());
            let suffix = if label.is_empty() {
                String::new()
            } else {
                format!(": {}", label.replace(':', "#58;"))
            };
            let _ = writeln!(out, "    {} --> {}{suffix}", mermaid_id(&t.from), mermaid_id(&t.to));
        }
        for s in self.terminals() {
            let _ = writeln!(out, "    {} --> [*]", mermaid_id(&s.name));
        }
        out
    }

    /// The definition as JSON: name, version, fingerprint, states (with
    /// initial/terminal marks and limits) and transitions.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing plain strings, bools and numbers into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn edge_label(label: Option<&str>, guard: Option<&str>) -> String {
    match (label, guard) {
        (Some(l), Some(g)) => format!("{l} [{g}]"),
        (Some(l), None) => l.to_owned(),
        (None, Some(g)) => format!("[{g}]"),
        (None, None) => String::new(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Mermaid state ids cannot hold spaces or punctuation.
fn mermaid_id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{MachineDef, StateDef, Transition};

    fn def() -> MachineDef {
        MachineDef::builder("order")
            .state(StateDef::new("Created").initial())
            .state(StateDef::new("Paid"))
            .state(StateDef::new("Shipped").terminal())
            .transition(Transition::new("Created", "Paid").with_label("pay"))
            .transition(Transition::new("Paid", "Shipped").with_guard("in_stock"))
            .build()
            .unwrap()
    }

    #[test]
    fn mermaid() {
        assert_eq!(
            def().to_mermaid(),
            "stateDiagram-v2\n    [*] --> Created\n    Created --> Paid: pay\n    Paid --> Shipped: [in_stock]\n    Shipped --> [*]\n"
        );
    }

    #[test]
    fn dot() {
        let dot = def().to_dot();
        assert!(dot.starts_with("digraph \"order\" {"));
        assert!(dot.contains("\"Created\" [shape=circle, style=bold];"));
        assert!(dot.contains("\"Shipped\" [shape=doublecircle];"));
        assert!(dot.contains("\"Paid\" -> \"Shipped\" [label=\"[in_stock]\"];"));
    }

    #[test]
    fn json() {
        let json = def().to_json();
        assert_eq!(json["name"], "order");
        assert_eq!(json["states"][0]["initial"], true);
        assert_eq!(json["transitions"][1]["guard"], "in_stock");
        assert_eq!(json["fingerprint"].as_str().map(str::len), Some(16));
    }

    #[test]
    fn fingerprint_ignores_order_and_labels_but_not_edges() {
        let a = def();
        let b = MachineDef::builder("order")
            .state(StateDef::new("Shipped").terminal())
            .state(StateDef::new("Paid"))
            .state(StateDef::new("Created").initial())
            .transition(Transition::new("Paid", "Shipped"))
            .transition(Transition::new("Created", "Paid"))
            .build()
            .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = MachineDef::builder("order")
            .state(StateDef::new("Created").initial())
            .state(StateDef::new("Shipped").terminal())
            .transition(Transition::new("Created", "Shipped"))
            .build()
            .unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}

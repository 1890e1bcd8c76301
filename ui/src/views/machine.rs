//! One machine: its graph with live counts.

use super::{jobs_with_status, legend, zoom_controls};
use crate::graph::{self, Marks};
use crate::html::escape;
use crate::model::{Machine, STATUSES};

/// Its jobs per status, each linking to the list of them.
pub fn totals(machine: &Machine) -> String {
    let mut out = String::new();
    for status in STATUSES {
        out.push_str(&format!(
            r#"<a class="total" href="{}"><i class="dot s-{status}"></i>{status} <b data-total="{status}">{}</b></a>"#,
            jobs_with_status(machine, status),
            machine.total(status)
        ));
    }
    out
}

pub fn machine(machine: &Machine) -> String {
    let mut out = format!(
        r#"<h1>Machine <span class="mono">{}</span></h1><p class="totals" id="totals">{}</p><p class="muted">Every declared state and transition. Hover a state to see its edges; click it to list its jobs; drag to pan, wheel to zoom.</p>"#,
        escape(&machine.name),
        totals(machine)
    );
    out.push_str(r#"<div class="graph-pane">"#);
    out.push_str(&legend());
    out.push_str(&zoom_controls());
    out.push_str(r#"<div class="graph-box">"#);
    out.push_str(&graph::svg(machine, Marks::default()));
    out.push_str("</div></div>");
    out
}

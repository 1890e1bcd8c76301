//! Every registered machine with its counts per lifecycle status.

use super::jobs_with_status;
use crate::html::escape;
use crate::model::{Machine, STATUSES};
use crate::route::Route;

pub fn machines(list: &[Machine]) -> String {
    let mut out =
        String::from(r#"<h1>Machines</h1><table class="machines"><thead><tr><th>machine</th><th>states</th>"#);
    for status in STATUSES {
        out.push_str(&format!(
            r#"<th class="num"><i class="dot s-{status}"></i>{status}</th>"#
        ));
    }
    out.push_str("</tr></thead><tbody>");
    if list.is_empty() {
        out.push_str(r#"<tr><td colspan="7">No machine is registered with this runtime.</td></tr>"#);
    }
    for machine in list {
        let name = escape(&machine.name);
        out.push_str(&format!(
            r#"<tr data-machine="{name}"><td><a href="{}">{name}</a></td><td class="num">{}</td>"#,
            escape(&Route::Machine(machine.name.clone()).fragment()),
            machine.states.len()
        ));
        for status in STATUSES {
            out.push_str(&format!(
                r#"<td class="num"><a data-total="{status}" href="{}">{}</a></td>"#,
                jobs_with_status(machine, status),
                machine.total(status)
            ));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_machine_with_its_totals() {
        let machine: Machine = serde_json::from_value(serde_json::json!({
            "name": "order", "states": [], "transitions": [],
            "totals": {"failed": 2}
        }))
        .unwrap();
        let html = machines(&[machine]);
        assert!(html.contains(r##"<a href="#/machines/order">order</a>"##));
        assert!(html.contains(r##"<a data-total="failed" href="#/jobs?machine=order&amp;status=failed">2</a>"##));
        assert!(machines(&[]).contains("No machine is registered"));
    }
}

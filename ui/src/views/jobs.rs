//! The job list: filters, one page of jobs newest first, and how many
//! match.

use super::status_badge;
use crate::html::{escape, timestamp};
use crate::model::{JobPage, Machine, STATUSES};
use crate::route::{Filter, Route};

/// A `<select>` that re-filters the list when changed.
fn select(name: &str, chosen: Option<&str>, options: &[&str]) -> String {
    let mut out = format!(
        r#"<label>{name} <select data-action="filter" data-arg="{name}" name="{name}"><option value="">any</option>"#
    );
    for option in options {
        let option = escape(option);
        let selected = if chosen == Some(option.as_str()) {
            " selected"
        } else {
            ""
        };
        out.push_str(&format!(r#"<option value="{option}"{selected}>{option}</option>"#));
    }
    out.push_str("</select></label>");
    out
}

/// One page of the list; `page_number` counts from 1.
pub fn jobs(machines: &[Machine], filter: &Filter, page: &JobPage, page_number: usize) -> String {
    let machine_names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
    let state_names: Vec<&str> = machines
        .iter()
        .filter(|m| filter.machine.as_deref().is_none_or(|f| f == m.name))
        .flat_map(|m| m.states.iter().map(|s| s.name.as_str()))
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        });
    let mut out = String::from(r#"<h1>Jobs</h1><form class="filters" onsubmit="return false">"#);
    out.push_str(&select("machine", filter.machine.as_deref(), &machine_names));
    out.push_str(&select("state", filter.state.as_deref(), &state_names));
    out.push_str(&select("status", filter.status.as_deref(), &STATUSES));
    out.push_str(&format!(
        r#"</form><p class="matching"><b data-matching="{0}">{0}</b> job{1} match, newest first.</p>"#,
        page.matching,
        if page.matching == 1 { "" } else { "s" }
    ));
    out.push_str(r#"<table class="jobs"><thead><tr><th>job</th><th>machine</th><th>state</th><th>status</th><th class="num">attempts</th><th>created</th><th>last error</th></tr></thead><tbody>"#);
    if page.jobs.is_empty() {
        out.push_str(r#"<tr><td colspan="7">No job matches.</td></tr>"#);
    }
    for job in &page.jobs {
        out.push_str(&format!(
            r#"<tr data-job="{id}"><td><a class="mono" href="{href}">{id}</a></td><td>{machine}</td><td>{state}</td><td>{status}</td><td class="num">{attempts}/{max}</td><td class="mono">{created}</td><td class="error">{error}</td></tr>"#,
            id = escape(&job.id),
            href = escape(&Route::Job(job.id.clone()).fragment()),
            machine = escape(&job.machine),
            state = escape(&job.state_name),
            status = status_badge(&job.status),
            attempts = job.attempts,
            max = job.max_attempts,
            created = timestamp(job.created_at_ms),
            error = escape(job.last_error.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table><nav class=\"pager\">");
    let disabled = |off: bool| if off { " disabled" } else { "" };
    out.push_str(&format!(
        r#"<button data-action="page-prev"{}>← newer</button><span>page {page_number}</span><button data-action="page-next"{}>older →</button></nav>"#,
        disabled(page_number <= 1),
        disabled(page.next.is_none()),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_page_the_count_and_the_filters() {
        let page: JobPage = serde_json::from_value(serde_json::json!({
            "jobs": [{
                "id": "j1", "machine": "order", "state": {"Paid": {}}, "state_name": "Paid",
                "status": "failed", "attempts": 3, "max_attempts": 3, "last_error": "<boom>"
            }],
            "next": "j1",
            "matching": 120
        }))
        .unwrap();
        let filter = Filter {
            status: Some("failed".into()),
            ..Filter::default()
        };
        let html = jobs(&[], &filter, &page, 1);
        assert!(html.contains(r#"<b data-matching="120">120</b> jobs match"#));
        assert!(html.contains(r#"<option value="failed" selected>failed</option>"#));
        assert!(html.contains("&lt;boom&gt;"));
        assert!(html.contains(r#"<button data-action="page-prev" disabled>"#));
        assert!(html.contains(r#"<button data-action="page-next">"#));
    }
}

//! One job: its path on the graph, its history as a timeline linked to the
//! graph, its payload, and the actions an operator may take on it.

use super::{legend, status_badge, zoom_controls};
use crate::graph::{self, Marks};
use crate::html::{duration, escape, pretty, timestamp};
use crate::model::{Entry, History, Job, Machine};
use crate::route::Route;

/// The job's view; its actions only when the token `can_change` jobs.
pub fn job(machine: &Machine, job: &Job, history: &History, can_change: bool) -> String {
    let finished = matches!(job.status.as_str(), "completed" | "failed" | "cancelled");
    let mut out = format!(
        r#"<h1>Job <span class="mono" data-job-id="{id}">{id}</span> <span data-job-status="{status_raw}">{status}</span></h1><p class="facts">machine <a href="{machine_href}">{machine}</a> · state <b data-job-state="{state}">{state}</b> · attempt {attempts} of {max} · created {created} · updated {updated}{error}</p>"#,
        id = escape(&job.id),
        status_raw = escape(&job.status),
        status = status_badge(&job.status),
        machine_href = escape(&Route::Machine(machine.name.clone()).fragment()),
        machine = escape(&machine.name),
        state = escape(&job.state_name),
        attempts = job.attempts,
        max = job.max_attempts,
        created = timestamp(job.created_at_ms),
        updated = timestamp(job.updated_at_ms),
        error = job
            .last_error
            .as_deref()
            .map(|e| format!(r#"<br><span class="error">last error: {}</span>"#, escape(e)))
            .unwrap_or_default(),
    );
    if can_change {
        out.push_str(&actions(machine, job, finished));
    } else {
        out.push_str(r#"<div class="actions"><span class="muted" data-read-only>this token may only read: no actions</span></div>"#);
    }
    out.push_str(r#"<div class="split"><div class="graph-pane">"#);
    out.push_str(&legend());
    out.push_str(&zoom_controls());
    out.push_str(r#"<div class="graph-box">"#);
    out.push_str(&graph::svg(
        machine,
        Marks {
            path: Some(&history.path),
            current: Some(&job.state_name),
        },
    ));
    out.push_str(r#"</div></div><div class="side"><h2>History</h2>"#);
    out.push_str(&timeline(&history.history));
    out.push_str(&format!(
        r#"<h2>Payload</h2><pre class="payload">{}</pre></div></div>"#,
        escape(&pretty(&job.state))
    ));
    out
}

fn actions(machine: &Machine, job: &Job, finished: bool) -> String {
    let off = |disabled: bool| if disabled { " disabled" } else { "" };
    let mut out = format!(
        r#"<div class="actions"><button data-action="cancel"{}>Cancel</button><button data-action="run"{}>Run now</button><button data-action="retry"{}>Retry</button>"#,
        off(finished),
        off(job.status != "pending"),
        off(!matches!(job.status.as_str(), "failed" | "cancelled")),
    );
    let targets = machine.targets(&job.state_name);
    if targets.is_empty() {
        out.push_str(r#"<span class="muted">no declared transition leaves this state</span>"#);
    } else {
        out.push_str(r#"<label>move to <select id="move-target" data-action="move-target">"#);
        for state in &targets {
            out.push_str(&format!(
                r#"<option value="{name}" data-json-name="{json}" data-carries="{carries}">{name}</option>"#,
                name = escape(&state.name),
                json = escape(state.json_name()),
                carries = state.carries_data(),
            ));
        }
        let first_carries = targets.first().is_some_and(|s| s.carries_data());
        out.push_str(&format!(
            r#"</select></label><textarea id="move-payload" rows="3" placeholder="the target state's fields as JSON, e.g. {{&quot;tracking&quot;: &quot;X1&quot;}}"{}></textarea><button data-action="move">Move</button>"#,
            if first_carries { "" } else { " hidden" }
        ));
    }
    out.push_str(r#"</div><div id="action-result"></div>"#);
    out
}

fn timeline(history: &[Entry]) -> String {
    let mut out = String::from(
        r#"<table class="timeline"><thead><tr><th>time</th><th>transition</th><th>lifecycle</th><th class="num">attempt</th><th>worker</th><th>after</th><th>error</th></tr></thead><tbody>"#,
    );
    let mut previous: Option<i64> = None;
    for entry in history {
        let transition = match &entry.from {
            None => format!("submitted → {}", escape(&entry.to)),
            Some(from) if *from == entry.to => format!("{} (stays)", escape(from)),
            Some(from) => format!("{} → {}", escape(from), escape(&entry.to)),
        };
        out.push_str(&format!(
            r#"<tr data-action="timeline" data-seq="{seq}" data-from="{from}" data-to="{to}"><td class="mono">{at}</td><td>{transition}</td><td>{status}</td><td class="num">{attempt}</td><td class="mono">{worker}</td><td class="num">{after}</td><td class="error">{error}</td></tr>"#,
            seq = entry.seq,
            from = escape(entry.from.as_deref().unwrap_or("")),
            to = escape(&entry.to),
            at = timestamp(entry.at),
            status = status_badge(&entry.status),
            attempt = entry.attempt,
            worker = escape(entry.worker.as_deref().unwrap_or("")),
            after = previous.map(|p| format!("+{}", duration(entry.at - p))).unwrap_or_default(),
            error = escape(entry.error.as_deref().unwrap_or("")),
        ));
        previous = Some(entry.at);
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_job_can_be_retried_but_not_cancelled() {
        let machine: Machine = serde_json::from_value(serde_json::json!({
            "name": "m",
            "states": [
                {"name": "start", "shape": "data", "initial": true, "terminal": false},
                {"name": "done", "shape": "data", "initial": false, "terminal": true}
            ],
            "transitions": [{"from": "start", "to": "done"}]
        }))
        .unwrap();
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": "j1", "machine": "m", "state": {"start": {}},
            "state_name": "start", "status": "failed", "attempts": 3, "max_attempts": 3,
            "created_at_ms": 1000, "updated_at_ms": 1000
        }))
        .unwrap();
        let history: History = serde_json::from_value(serde_json::json!({
            "path": {"visited": ["start"], "edges": []},
            "history": [{"seq": 0, "from": null, "to": "start", "status": "pending", "at": 1000, "attempt": 0}]
        }))
        .unwrap();
        let html = super::job(&machine, &job, &history, true);
        assert!(html.contains(r#"<button data-action="retry">Retry</button>"#), "{html}");
        assert!(html.contains(r#"<button data-action="cancel" disabled>"#), "{html}");
        let read_only = super::job(&machine, &job, &history, false);
        for action in ["cancel", "run", "retry", "move"] {
            let button = format!(r#"<button data-action="{action}""#);
            assert!(!read_only.contains(&button), "no {action} for a read-only token");
        }
        assert!(read_only.contains("data-read-only"));
    }

    #[test]
    fn offers_only_the_declared_targets_and_links_the_timeline() {
        let machine: Machine = serde_json::from_value(serde_json::json!({
            "name": "order",
            "states": [
                {"name": "Created", "shape": "struct", "initial": true, "terminal": false},
                {"name": "Paid", "shape": "struct", "initial": false, "terminal": false},
                {"name": "Cancelled", "shape": "unit", "initial": false, "terminal": true},
                {"name": "Shipped", "shape": "unit", "initial": false, "terminal": true}
            ],
            "transitions": [
                {"from": "Created", "to": "Paid"},
                {"from": "Created", "to": "Cancelled"},
                {"from": "Paid", "to": "Shipped"}
            ]
        }))
        .unwrap();
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": "j1", "machine": "order", "state": {"Created": {"sku": "a"}},
            "state_name": "Created", "status": "pending", "attempts": 0, "max_attempts": 3,
            "created_at_ms": 1000, "updated_at_ms": 1000
        }))
        .unwrap();
        let history: History = serde_json::from_value(serde_json::json!({
            "path": {"visited": ["Created"], "edges": []},
            "history": [{"seq": 0, "from": null, "to": "Created", "status": "pending", "at": 1000, "attempt": 0}]
        }))
        .unwrap();
        let html = super::job(&machine, &job, &history, true);
        assert!(html.contains(r#"<option value="Paid" data-json-name="Paid" data-carries="true">"#));
        assert!(html.contains(r#"<option value="Cancelled" data-json-name="Cancelled" data-carries="false">"#));
        assert!(
            !html.contains(r#"<option value="Shipped""#),
            "not reachable from Created"
        );
        assert!(html.contains(r#"data-action="timeline" data-seq="0" data-from="" data-to="Created""#));
        assert!(
            html.contains(r#"<button data-action="run">"#),
            "a pending job can be run now"
        );
        assert!(
            html.contains(r#"<button data-action="retry" disabled>"#),
            "a pending job cannot be retried"
        );
        assert!(html.contains("&quot;sku&quot;: &quot;a&quot;"));
    }
}

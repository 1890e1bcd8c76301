//! `/machines`, `/health` and `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::Admin;
use crate::machine::MachineDef;
use crate::runtime::LATENCY_BUCKETS;
use crate::storage::CountRow;

/// A definition with its live counts: `{state: {status: n}}` and totals per
/// status.
fn machine_json(def: &MachineDef, counts: &[CountRow]) -> Value {
    let mut by_state: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for row in counts.iter().filter(|r| r.machine == def.name()) {
        *by_state
            .entry(&row.state)
            .or_default()
            .entry(row.status.as_str())
            .or_default() += row.count;
        *by_status.entry(row.status.as_str()).or_default() += row.count;
    }
    let mut value = def.to_json();
    value["counts"] = json!(by_state);
    value["totals"] = json!(by_status);
    value
}

pub(crate) async fn list(State(admin): State<Admin>) -> Result<Json<Value>, ApiError> {
    let counts = admin.runtime.counts().await?;
    let machines: Vec<Value> = admin
        .runtime
        .machines()
        .into_iter()
        .map(|d| machine_json(d, &counts))
        .collect();
    Ok(Json(json!({ "machines": machines })))
}

pub(crate) async fn get(State(admin): State<Admin>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let def = admin
        .runtime
        .machine(&name)
        .ok_or_else(|| ApiError::not_found("machine_not_found", format!("no `{name}` machine is registered")))?;
    let counts = admin.runtime.counts().await?;
    let mut value = machine_json(def, &counts);
    value["mermaid"] = json!(def.to_mermaid());
    value["dot"] = json!(def.to_dot());
    Ok(Json(value))
}

pub(crate) async fn health(State(admin): State<Admin>) -> Result<Json<Value>, ApiError> {
    // A cheap read proves the storage answers.
    admin.runtime.get_record(crate::storage::JobId::from_u128(0)).await?;
    Ok(Json(
        json!({ "status": "ok", "machines": admin.runtime.machines().len() }),
    ))
}

pub(crate) async fn metrics(State(admin): State<Admin>) -> Result<impl IntoResponse, ApiError> {
    let counts = admin.runtime.counts().await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP runekernel_jobs Jobs by machine, state and lifecycle state."
    );
    let _ = writeln!(out, "# TYPE runekernel_jobs gauge");
    for row in &counts {
        let _ = writeln!(
            out,
            "runekernel_jobs{{machine=\"{}\",state=\"{}\",status=\"{}\"}} {}",
            escape(&row.machine),
            escape(&row.state),
            row.status,
            row.count
        );
    }
    let metrics = admin.runtime.metrics();
    for (name, help, pick) in [
        ("runekernel_steps_total", "Steps run.", 0),
        ("runekernel_step_failures_total", "Steps that failed their job.", 1),
        (
            "runekernel_step_retries_total",
            "Steps that failed and will be retried.",
            2,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for m in &metrics {
            let value = [m.steps, m.failures, m.retries][pick];
            let _ = writeln!(out, "{name}{{machine=\"{}\"}} {value}", escape(&m.machine));
        }
    }
    let name = "runekernel_heartbeat_failures_total";
    let _ = writeln!(
        out,
        "# HELP {name} Heartbeats that failed (each is retried).\n# TYPE {name} counter\n{name} {}",
        admin.runtime.heartbeat_failures()
    );
    let name = "runekernel_step_duration_seconds";
    let _ = writeln!(out, "# HELP {name} How long steps take.\n# TYPE {name} histogram");
    for m in &metrics {
        let machine = escape(&m.machine);
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&m.latency_buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{machine=\"{machine}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "{name}_bucket{{machine=\"{machine}\",le=\"+Inf\"}} {}", m.steps);
        let _ = writeln!(
            out,
            "{name}_sum{{machine=\"{machine}\"}} {}",
            m.latency_sum.as_secs_f64()
        );
        let _ = writeln!(out, "{name}_count{{machine=\"{machine}\"}} {}", m.steps);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    ))
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

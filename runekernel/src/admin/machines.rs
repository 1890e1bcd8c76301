//! `/machines`, `/health` and `/metrics`.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;

use super::auth::Role;
use super::error::ApiError;
use super::openapi::{MachineNotFound, Protected, StorageFailed};
use super::views::{HealthJson, MachineJson, MachineListJson, WhoAmI};
use super::Admin;
use crate::runtime::LATENCY_BUCKETS;

/// Every registered machine with live counts.
#[utoipa::path(
    get,
    path = "/machines",
    operation_id = "list_machines",
    tag = "machines",
    responses(
        (status = 200, description = "The machines", body = MachineListJson),
        Protected,
    )
)]
pub(crate) async fn list(State(admin): State<Admin>) -> Result<Response, ApiError> {
    let counts = admin.runtime.counts().await?;
    let machines = admin
        .runtime
        .machines()
        .into_iter()
        .map(|d| MachineJson::new(d, &counts))
        .collect();
    Ok(Json(MachineListJson { machines }).into_response())
}

/// One machine's graph with live counts per state.
#[utoipa::path(
    get,
    path = "/machines/{name}",
    operation_id = "get_machine",
    tag = "machines",
    params(("name" = String, Path, description = "The machine's name")),
    responses(
        (status = 200, description = "The machine", body = MachineJson),
        Protected,
        (status = 404, response = inline(MachineNotFound)),
    )
)]
pub(crate) async fn get(State(admin): State<Admin>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let def = admin
        .runtime
        .machine(&name)
        .ok_or_else(|| ApiError::not_found("machine_not_found", format!("no `{name}` machine is registered")))?;
    let counts = admin.runtime.counts().await?;
    Ok(Json(MachineJson::new(def, &counts).with_drawings()).into_response())
}

/// What the caller's token may do: `operator` (everything), `read_only`
/// (every `GET`, no change) or `machines` (every `GET`, and changes to the
/// jobs of the machines it names); the visualizer hides what it may not do.
#[utoipa::path(
    get,
    path = "/whoami",
    operation_id = "whoami",
    tag = "meta",
    responses(
        (status = 200, description = "The token's role", body = WhoAmI),
        (status = 401, response = inline(super::openapi::Unauthorized)),
    )
)]
pub(crate) async fn whoami(Extension(role): Extension<Role>) -> Json<WhoAmI> {
    Json(WhoAmI::new(&role))
}

/// Liveness and storage check.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "Healthy", body = HealthJson),
        (status = 500, response = inline(StorageFailed)),
    )
)]
pub(crate) async fn health(State(admin): State<Admin>) -> Result<Json<HealthJson>, ApiError> {
    // A cheap read proves the storage answers.
    admin.runtime.get_record(crate::storage::JobId::from_u128(0)).await?;
    Ok(Json(HealthJson {
        status: "ok",
        machines: admin.runtime.machines().len(),
    }))
}

/// Prometheus metrics: jobs by machine, state and lifecycle; steps,
/// failures, retries; step latency.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        Protected,
    )
)]
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

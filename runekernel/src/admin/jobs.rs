//! `/jobs` endpoints.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{job_id, Body, Params};
use super::Admin;
use crate::runtime::SubmitOptions;
use crate::storage::{CancelOutcome, HistoryEntry, JobFilter, JobRecord, JobState, ListOrder};

/// A job as the API shows it: its state in the enum's own JSON form.
pub(crate) fn job_json(admin: &Admin, record: &JobRecord) -> Value {
    let state = match admin.runtime.machine(&record.machine) {
        Some(def) => def.state_to_json(&record.state, &record.payload),
        None => json!({ &record.state: record.payload }),
    };
    json!({
        "id": record.id,
        "machine": record.machine,
        "state": state,
        "state_name": record.state,
        "status": record.status,
        "attempts": record.attempts,
        "max_attempts": record.max_attempts,
        "priority": record.priority,
        "run_at_ms": record.run_at,
        "created_at_ms": record.created_at,
        "updated_at_ms": record.updated_at,
        "version": record.version,
        "last_error": record.last_error,
        "fingerprint": format!("{:016x}", record.fingerprint),
    })
}

async fn record(admin: &Admin, raw: &str) -> Result<JobRecord, ApiError> {
    let id = job_id(raw)?;
    admin
        .runtime
        .get_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("job {id} does not exist")))
}

/// `POST /jobs` options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    #[serde(default)]
    priority: i32,
    delay_ms: Option<u64>,
    max_attempts: Option<u32>,
    timeout_ms: Option<u64>,
    idempotency_key: Option<String>,
}

/// `POST /jobs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submit {
    machine: String,
    state: Value,
    #[serde(default)]
    options: Options,
}

pub(crate) async fn submit(
    State(admin): State<Admin>,
    Body(body): Body<Submit>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let def = admin.runtime.machine(&body.machine).ok_or_else(|| {
        ApiError::not_found(
            "machine_not_found",
            format!("no `{}` machine is registered", body.machine),
        )
    })?;
    let (state, payload) = def.state_from_json(&body.state)?;
    if body.options.max_attempts == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_options",
            "max_attempts must be at least 1",
        ));
    }
    let options = SubmitOptions {
        priority: body.options.priority,
        delay: body.options.delay_ms.map(Duration::from_millis),
        run_at: None,
        max_attempts: body.options.max_attempts,
        timeout: body.options.timeout_ms.map(Duration::from_millis),
        idempotency_key: body.options.idempotency_key,
    };
    let id = admin
        .runtime
        .submit_stored(&body.machine, &state, payload, options)
        .await?;
    let record = admin
        .runtime
        .get_record(id)
        .await?
        .ok_or(crate::RuntimeError::NotFound(id))?;
    Ok((StatusCode::CREATED, Json(job_json(&admin, &record))))
}

pub(crate) async fn get(State(admin): State<Admin>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(job_json(&admin, &record(&admin, &id).await?)))
}

/// `PUT /jobs/{id}/state` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetState {
    state: Value,
}

pub(crate) async fn set_state(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Body(body): Body<SetState>,
) -> Result<Json<Value>, ApiError> {
    let current = record(&admin, &id).await?;
    let def = admin.runtime.machine(&current.machine).ok_or_else(|| {
        ApiError::not_found(
            "machine_not_found",
            format!("no `{}` machine is registered", current.machine),
        )
    })?;
    let (state, payload) = def.state_from_json(&body.state)?;
    let updated = admin.runtime.set_stored_state(current.id, &state, payload).await?;
    Ok(Json(job_json(&admin, &updated)))
}

pub(crate) async fn run(State(admin): State<Admin>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let current = record(&admin, &id).await?;
    admin.runtime.run_job(&current.id).await?;
    Ok(Json(job_json(&admin, &record(&admin, &id).await?)))
}

pub(crate) async fn cancel(State(admin): State<Admin>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let current = record(&admin, &id).await?;
    let outcome = match admin.runtime.cancel(current.id).await? {
        CancelOutcome::Cancelled(_) => "cancelled",
        CancelOutcome::Requested => "requested",
        CancelOutcome::AlreadyFinished(_) => "already_finished",
    };
    let mut job = job_json(&admin, &record(&admin, &id).await?);
    job["cancel"] = json!(outcome);
    Ok(Json(job))
}

pub(crate) async fn history(State(admin): State<Admin>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let current = record(&admin, &id).await?;
    let history = admin.runtime.history(current.id).await?;
    Ok(Json(
        json!({ "id": current.id, "path": path(&history), "history": history }),
    ))
}

/// Where a job has been: the states it visited and the transitions it
/// took (`[from, to]`), each once, in the order first taken.
fn path(history: &[HistoryEntry]) -> Value {
    let mut visited: Vec<&str> = Vec::new();
    let mut edges: Vec<[&str; 2]> = Vec::new();
    for entry in history {
        if !visited.contains(&entry.to.as_str()) {
            visited.push(&entry.to);
        }
        if let Some(from) = entry.from.as_deref().filter(|from| *from != entry.to) {
            let edge = [from, entry.to.as_str()];
            if !edges.contains(&edge) {
                edges.push(edge);
            }
        }
    }
    json!({ "visited": visited, "edges": edges })
}

/// `GET /jobs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    machine: Option<String>,
    state: Option<String>,
    status: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
}

pub(crate) async fn list(
    State(admin): State<Admin>,
    Params(query): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = query
        .status
        .map(|s| s.parse::<JobState>())
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let after = query.after.as_deref().map(job_id).transpose()?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be from 1 to 1000"));
    }
    let order = match query.order.as_deref() {
        None | Some("oldest") => ListOrder::OldestFirst,
        Some("newest") => ListOrder::NewestFirst,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("order must be `oldest` or `newest`, not `{other}`"),
            ))
        }
    };
    let filter = JobFilter {
        machine: query.machine,
        state: query.state,
        status,
    };
    let page = admin.runtime.list_ordered(&filter, after, limit, order).await?;
    // How many match, from the counts query: never by listing them.
    let matching: u64 = admin
        .runtime
        .counts()
        .await?
        .iter()
        .filter(|row| filter.matches(&row.machine, &row.state, row.status))
        .map(|row| row.count)
        .sum();
    let jobs: Vec<Value> = page.jobs.iter().map(|r| job_json(&admin, r)).collect();
    Ok(Json(json!({ "jobs": jobs, "next": page.next, "matching": matching })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(from: Option<&str>, to: &str) -> HistoryEntry {
        HistoryEntry {
            seq: 0,
            from: from.map(str::to_owned),
            to: to.to_owned(),
            status: JobState::Running,
            error: None,
            at: 0,
            attempt: 1,
            worker: None,
            payload: Value::Null,
        }
    }

    #[test]
    fn a_path_names_each_state_and_transition_once() {
        let history = [
            entry(None, "Drafted"),
            entry(Some("Drafted"), "Sent"),
            entry(Some("Sent"), "Reminded"),
            entry(Some("Reminded"), "Sent"),
            entry(Some("Sent"), "Sent"),
            entry(Some("Sent"), "Reminded"),
        ];
        assert_eq!(
            path(&history),
            json!({
                "visited": ["Drafted", "Sent", "Reminded"],
                "edges": [["Drafted", "Sent"], ["Sent", "Reminded"], ["Reminded", "Sent"]]
            })
        );
    }
}

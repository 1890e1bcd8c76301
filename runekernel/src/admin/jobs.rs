//! `/jobs` endpoints.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Role;
use super::error::{ApiError, Problem};
use super::extract::{job_id, Body, Params};
use super::openapi::{Changing, JobChange, JobLookup, JobNotFound, JsonBody, MachineNotFound, Protected};
use super::views::{BulkJson, CancelResult, HistoryJson, JobJson, JobPageJson, PathJson, StateJson};
use super::Admin;
use crate::runtime::SubmitOptions;
use crate::storage::{CancelOutcome, JobFilter, JobId, JobRecord, JobState, ListOrder, NewJob};

/// The `{id}` of a job's path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobPathId {
    /// The job's id.
    #[param(format = Uuid)]
    id: String,
}

/// The job `raw` names, or the 400 or 404 that says why there is none.
async fn record(admin: &Admin, raw: &str) -> Result<JobRecord, ApiError> {
    let id = job_id(raw)?;
    admin
        .runtime
        .get_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("job {id} does not exist")))
}

/// `POST /jobs` options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    /// Lower runs first.
    #[serde(default)]
    priority: i32,
    /// Run no sooner than this many milliseconds from now.
    delay_ms: Option<u64>,
    /// Attempts per step before the job fails.
    #[schema(minimum = 1, maximum = 2147483647)]
    max_attempts: Option<u32>,
    /// Per-step timeout in milliseconds.
    timeout_ms: Option<u64>,
    /// A second submit with the same key answers the first job.
    idempotency_key: Option<String>,
    /// The queue the job waits in; default: its machine's.
    queue: Option<String>,
}

/// `POST /jobs` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submit {
    /// A registered machine's name.
    machine: String,
    /// One of the machine's initial states.
    #[schema(value_type = StateJson)]
    state: Value,
    #[serde(default)]
    options: Options,
}

/// Submit a job.
#[utoipa::path(
    post,
    path = "/jobs",
    operation_id = "submit_job",
    tag = "jobs",
    request_body = Submit,
    responses(
        (status = 201, description = "The submitted job (or the earlier job with the same idempotency key)", body = JobJson),
        JsonBody,
        Changing,
        (status = 404, response = inline(MachineNotFound)),
        (status = 422, description = "The state is not the machine's initial state", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn submit(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Body(body): Body<Submit>,
) -> Result<(StatusCode, Json<JobJson>), ApiError> {
    role.check(&body.machine)?;
    let def = admin.runtime.machine(&body.machine).ok_or_else(|| {
        ApiError::not_found(
            "machine_not_found",
            format!("no `{}` machine is registered", body.machine),
        )
    })?;
    let (state, payload) = def.state_from_json(&body.state)?;
    if let Some(max) = body
        .options
        .max_attempts
        .filter(|max| !(1..=NewJob::MAX_ATTEMPTS).contains(max))
    {
        return Err(ApiError::bad_request(
            "invalid_options",
            format!("max_attempts must be from 1 to {}, not {max}", NewJob::MAX_ATTEMPTS),
        ));
    }
    if let Some(ms) = body.options.timeout_ms.filter(|ms| *ms > NewJob::MAX_TIMEOUT_MS) {
        return Err(ApiError::bad_request(
            "invalid_options",
            format!("timeout_ms must be at most {}, not {ms}", NewJob::MAX_TIMEOUT_MS),
        ));
    }
    let options = SubmitOptions {
        priority: body.options.priority,
        delay: body.options.delay_ms.map(Duration::from_millis),
        run_at: None,
        max_attempts: body.options.max_attempts,
        timeout: body.options.timeout_ms.map(Duration::from_millis),
        idempotency_key: body.options.idempotency_key,
        queue: body.options.queue,
        submitted_by: Some(role.who()),
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
    Ok((StatusCode::CREATED, Json(JobJson::new(&admin, &record))))
}

/// One job.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    params(JobPathId),
    responses(
        (status = 200, description = "The job", body = JobJson),
        JobLookup,
    )
)]
pub(crate) async fn get(
    State(admin): State<Admin>,
    Path(JobPathId { id }): Path<JobPathId>,
) -> Result<Json<JobJson>, ApiError> {
    Ok(Json(JobJson::new(&admin, &record(&admin, &id).await?)))
}

/// Delete a finished job with its history.
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    operation_id = "delete_job",
    tag = "jobs",
    params(JobPathId),
    responses(
        (status = 204, description = "Deleted"),
        JobChange,
        (status = 409, description = "The job has not finished (cancel it first)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(JobPathId { id }): Path<JobPathId>,
) -> Result<StatusCode, ApiError> {
    let current = record(&admin, &id).await?;
    role.check(&current.machine)?;
    admin.runtime.delete(current.id).await?;
    tracing::info!(job = %current.id, by = %role.who(), "deleted a job through the admin API");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /jobs/{id}/state` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetState {
    /// The state to move to: a declared target of the job's state.
    #[schema(value_type = StateJson)]
    state: Value,
}

/// Move a job along a declared transition (recorded as an admin change).
#[utoipa::path(
    put,
    path = "/jobs/{id}/state",
    operation_id = "set_job_state",
    tag = "jobs",
    params(JobPathId),
    request_body = SetState,
    responses(
        (status = 200, description = "The moved job", body = JobJson),
        JsonBody,
        Changing,
        (status = 404, response = inline(JobNotFound)),
        (status = 409, description = "Not a declared transition (`allowed` lists the targets), a rejected guard, or a running job",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn set_state(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(JobPathId { id }): Path<JobPathId>,
    Body(body): Body<SetState>,
) -> Result<Json<JobJson>, ApiError> {
    let current = record(&admin, &id).await?;
    role.check(&current.machine)?;
    let def = admin.runtime.machine(&current.machine).ok_or_else(|| {
        ApiError::not_found(
            "machine_not_found",
            format!("no `{}` machine is registered", current.machine),
        )
    })?;
    let (state, payload) = def.state_from_json(&body.state)?;
    let updated = admin
        .runtime
        .set_stored_state_by(current.id, &state, payload, &role.who())
        .await?;
    Ok(Json(JobJson::new(&admin, &updated)))
}

/// Run a pending job now.
#[utoipa::path(
    post,
    path = "/jobs/{id}/run",
    operation_id = "run_job",
    tag = "jobs",
    params(JobPathId),
    responses(
        (status = 200, description = "The job afterwards", body = JobJson),
        JobChange,
        (status = 503, description = "The runtime stopped before the step ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn run(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(JobPathId { id }): Path<JobPathId>,
) -> Result<Json<JobJson>, ApiError> {
    let current = record(&admin, &id).await?;
    role.check(&current.machine)?;
    // The steps are recorded in history under the worker that runs them;
    // who asked for the run is logged.
    tracing::info!(job = %current.id, by = %role.who(), "running a job now through the admin API");
    admin.runtime.run_job(&current.id).await?;
    Ok(Json(JobJson::new(&admin, &record(&admin, &id).await?)))
}

/// Cancel a job.
#[utoipa::path(
    post,
    path = "/jobs/{id}/cancel",
    operation_id = "cancel_job",
    tag = "jobs",
    params(JobPathId),
    responses(
        (status = 200, description = "The job, with `cancel`: what the cancel did", body = JobJson),
        JobChange,
    )
)]
pub(crate) async fn cancel(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(JobPathId { id }): Path<JobPathId>,
) -> Result<Json<JobJson>, ApiError> {
    let current = record(&admin, &id).await?;
    role.check(&current.machine)?;
    let result = match admin.runtime.cancel_by(current.id, Some(&role.who())).await? {
        CancelOutcome::Cancelled(_) => CancelResult::Cancelled,
        CancelOutcome::Requested => CancelResult::Requested,
        CancelOutcome::AlreadyFinished(_) => CancelResult::AlreadyFinished,
    };
    let job = JobJson::new(&admin, &record(&admin, &id).await?);
    Ok(Json(job.cancelled(result)))
}

/// Retry a failed or cancelled job from the state it stopped in (recorded
/// as asked by `admin`).
#[utoipa::path(
    post,
    path = "/jobs/{id}/retry",
    operation_id = "retry_job",
    tag = "jobs",
    params(JobPathId),
    responses(
        (status = 200, description = "The job, pending again with its attempts reset", body = JobJson),
        JobChange,
        (status = 409, description = "The job is not failed or cancelled, or changed meanwhile",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn retry(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(JobPathId { id }): Path<JobPathId>,
) -> Result<Json<JobJson>, ApiError> {
    let current = record(&admin, &id).await?;
    role.check(&current.machine)?;
    let retried = admin.runtime.retry_by(current.id, &role.who()).await?;
    Ok(Json(JobJson::new(&admin, &retried)))
}

/// `POST /jobs/retry` and `POST /jobs/cancel` body: which jobs, and which
/// page of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkRequest {
    /// Only this machine's jobs.
    machine: Option<String>,
    /// Only jobs in this queue.
    queue: Option<String>,
    /// Only jobs in this state (its stored name).
    state: Option<String>,
    /// Only jobs in this lifecycle state.
    status: Option<JobState>,
    /// Go on after this job id (the previous answer's `next`).
    #[schema(format = Uuid)]
    after: Option<String>,
    /// How many matching jobs one call looks at, oldest first.
    #[schema(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
}

impl BulkRequest {
    /// The filter, the cursor and the page size, or the 400 that says
    /// which is wrong, or the 403 of a change `role` may not make: a
    /// filter that names no machine reaches every machine's jobs and needs
    /// the operator token; one that names a machine needs a role that may
    /// change its jobs.
    fn page(self, role: &Role) -> Result<(JobFilter, Option<JobId>, usize), ApiError> {
        let after = self.after.as_deref().map(job_id).transpose()?;
        let limit = self.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request("invalid_options", "limit must be from 1 to 1000"));
        }
        match &self.machine {
            Some(machine) => role.check(machine)?,
            None => role.check_operator("a bulk change whose filter names no `machine`")?,
        }
        let filter = JobFilter {
            machine: self.machine,
            queue: self.queue,
            state: self.state,
            status: self.status,
        };
        Ok((filter, after, limit))
    }
}

/// Retry the failed and cancelled jobs among one page of those a filter
/// matches (recorded as asked by `admin`, or `admin:<name>` for a machine
/// token); call again with `after` set to the answer's `next` until it is
/// `null`.
#[utoipa::path(
    post,
    path = "/jobs/retry",
    operation_id = "retry_jobs",
    tag = "jobs",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "How many jobs of the page were retried, and where to go on", body = BulkJson),
        JsonBody,
        Changing,
    )
)]
pub(crate) async fn retry_all(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Body(body): Body<BulkRequest>,
) -> Result<Json<BulkJson>, ApiError> {
    let (filter, after, limit) = body.page(&role)?;
    let page = admin
        .runtime
        .retry_matching_by(&filter, after, limit, &role.who())
        .await?;
    Ok(Json(BulkJson::from(page)))
}

/// Cancel the unfinished jobs among one page of those a filter matches;
/// call again with `after` set to the answer's `next` until it is `null`.
#[utoipa::path(
    post,
    path = "/jobs/cancel",
    operation_id = "cancel_jobs",
    tag = "jobs",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "How many jobs of the page were cancelled (or asked to stop), and where to go on", body = BulkJson),
        JsonBody,
        Changing,
    )
)]
pub(crate) async fn cancel_all(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Body(body): Body<BulkRequest>,
) -> Result<Json<BulkJson>, ApiError> {
    let (filter, after, limit) = body.page(&role)?;
    let page = admin
        .runtime
        .cancel_matching_by(&filter, after, limit, Some(&role.who()))
        .await?;
    Ok(Json(BulkJson::from(page)))
}

/// A job's history, oldest first, and the path it took.
#[utoipa::path(
    get,
    path = "/jobs/{id}/history",
    operation_id = "job_history",
    tag = "jobs",
    params(JobPathId),
    responses(
        (status = 200, description = "The history, and the path it took", body = HistoryJson),
        JobLookup,
    )
)]
pub(crate) async fn history(
    State(admin): State<Admin>,
    Path(JobPathId { id }): Path<JobPathId>,
) -> Result<Json<HistoryJson>, ApiError> {
    let current = record(&admin, &id).await?;
    let history = admin.runtime.history(current.id).await?;
    Ok(Json(HistoryJson {
        id: current.id,
        path: PathJson::new(&history),
        history,
    }))
}

/// `GET /jobs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only this machine's jobs.
    machine: Option<String>,
    /// Only jobs in this queue.
    queue: Option<String>,
    /// Only jobs in this state (its stored name).
    state: Option<String>,
    /// Only jobs in this lifecycle state.
    #[param(value_type = Option<JobState>)]
    status: Option<String>,
    /// Continue after this job id, in the listing's order.
    #[param(format = Uuid)]
    after: Option<String>,
    /// How many jobs a page holds.
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<usize>,
    /// `oldest` (smallest id) or `newest` first; `after` continues in
    /// that order.
    #[param(inline)]
    order: Option<Order>,
}

/// The order of `GET /jobs`.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    /// Smallest id first.
    #[default]
    Oldest,
    /// Largest id first.
    Newest,
}

/// List jobs, oldest or newest first, with a cursor and how many match.
#[utoipa::path(
    get,
    path = "/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPageJson),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        Protected,
    )
)]
pub(crate) async fn list(
    State(admin): State<Admin>,
    Params(query): Params<ListQuery>,
) -> Result<Json<JobPageJson>, ApiError> {
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
    let order = match query.order.unwrap_or_default() {
        Order::Oldest => ListOrder::OldestFirst,
        Order::Newest => ListOrder::NewestFirst,
    };
    let filter = JobFilter {
        machine: query.machine,
        queue: query.queue,
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
        .filter(|row| filter.matches(&row.machine, &row.queue, &row.state, row.status))
        .map(|row| row.count)
        .sum();
    Ok(Json(JobPageJson {
        jobs: page.jobs.iter().map(|r| JobJson::new(&admin, r)).collect(),
        next: page.next,
        matching,
    }))
}

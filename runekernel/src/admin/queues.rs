//! `/queues`: every queue with its counts, and pausing and resuming one.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Role;
use super::error::{ApiError, Problem};
use super::openapi::{Changing, Protected};
use super::Admin;
use crate::runtime::QueueInfo;

/// Every queue.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = QueueList)]
pub(crate) struct QueueListJson {
    /// The queues, by name.
    queues: Vec<QueueInfo>,
}

/// Every queue that holds jobs, is paused, or is served or named by this
/// process, with its paused flag and its jobs per lifecycle state.
#[utoipa::path(
    get,
    path = "/queues",
    operation_id = "list_queues",
    tag = "queues",
    responses(
        (status = 200, description = "The queues", body = QueueListJson),
        Protected,
    )
)]
pub(crate) async fn list(State(admin): State<Admin>) -> Result<Json<QueueListJson>, ApiError> {
    Ok(Json(QueueListJson {
        queues: admin.runtime.queues().await?,
    }))
}

/// Pause a queue for every process sharing the storage: no job of it is
/// claimed until it is resumed; steps already running finish.
#[utoipa::path(
    put,
    path = "/queues/{name}/pause",
    operation_id = "pause_queue",
    tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    responses(
        (status = 200, description = "The queue, paused", body = QueueInfo),
        (status = 400, description = "The queue's name is empty",
            body = Problem, content_type = "application/problem+json"),
        Changing,
    )
)]
pub(crate) async fn pause(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&admin, &role, &name, true).await
}

/// Resume a paused queue: its jobs are claimed again.
#[utoipa::path(
    put,
    path = "/queues/{name}/resume",
    operation_id = "resume_queue",
    tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    responses(
        (status = 200, description = "The queue, running", body = QueueInfo),
        (status = 400, description = "The queue's name is empty",
            body = Problem, content_type = "application/problem+json"),
        Changing,
    )
)]
pub(crate) async fn resume(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&admin, &role, &name, false).await
}

/// Pauses or resumes queue `name`, if `role` may, and answers it as
/// `GET /queues` shows it.
async fn set_paused(admin: &Admin, role: &Role, name: &str, paused: bool) -> Result<Json<QueueInfo>, ApiError> {
    role.check_operator("pausing or resuming a queue")?;
    if paused {
        admin.runtime.pause_queue(name).await?;
        tracing::info!(queue = name, by = %role.who(), "paused a queue through the admin API");
    } else {
        admin.runtime.resume_queue(name).await?;
        tracing::info!(queue = name, by = %role.who(), "resumed a queue through the admin API");
    }
    Ok(Json(admin.runtime.queue(name).await?))
}

//! What a runtime does by itself: `/periodic` (the periodic jobs it submits)
//! and `/retention` (how long finished jobs are kept, and a pruning pass
//! on demand).

use std::time::Duration;

use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Role;
use super::error::ApiError;
use super::openapi::{Changing, Protected};
use super::Admin;
use crate::runtime::PeriodicInfo;

/// Every periodic job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PeriodicList)]
pub(crate) struct PeriodicListJson {
    /// The periodic jobs, in registration order.
    periodic: Vec<PeriodicInfo>,
}

/// The periodic jobs this process submits, with their schedules and their
/// last and next ticks.
#[utoipa::path(
    get,
    path = "/periodic",
    operation_id = "list_periodic",
    tag = "maintenance",
    responses(
        (status = 200, description = "The periodic jobs", body = PeriodicListJson),
        Protected,
    )
)]
pub(crate) async fn periodic(State(admin): State<Admin>) -> Json<PeriodicListJson> {
    Json(PeriodicListJson {
        periodic: admin.runtime.periodic_jobs(),
    })
}

/// How long finished jobs are kept, in milliseconds (`null`: for good).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Retention)]
pub(crate) struct RetentionJson {
    /// Completed jobs.
    completed_ms: Option<u64>,
    /// Failed jobs.
    failed_ms: Option<u64>,
    /// Cancelled jobs.
    cancelled_ms: Option<u64>,
    /// How often the pruner runs.
    interval_ms: u64,
    /// How many jobs one storage call deletes.
    batch: usize,
}

/// How long this process keeps finished jobs, per lifecycle state.
#[utoipa::path(
    get,
    path = "/retention",
    operation_id = "get_retention",
    tag = "maintenance",
    responses(
        (status = 200, description = "The retention policy", body = RetentionJson),
        Protected,
    )
)]
pub(crate) async fn retention(State(admin): State<Admin>) -> Json<RetentionJson> {
    let retention = admin.runtime.policies().retention;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Json(RetentionJson {
        completed_ms: retention.completed.map(ms),
        failed_ms: retention.failed.map(ms),
        cancelled_ms: retention.cancelled.map(ms),
        interval_ms: ms(retention.interval),
        batch: retention.batch,
    })
}

/// What a pruning pass did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Pruned)]
pub(crate) struct PrunedJson {
    /// How many finished jobs it deleted; `null` when another process holds
    /// the pruning duty (it prunes instead).
    pruned: Option<u64>,
}

/// Run a pruning pass now: delete the finished jobs past their retention,
/// with their history, unless another process holds the pruning duty.
#[utoipa::path(
    post,
    path = "/retention/prune",
    operation_id = "prune",
    tag = "maintenance",
    responses(
        (status = 200, description = "What the pass deleted", body = PrunedJson),
        Changing,
    )
)]
pub(crate) async fn prune(
    State(admin): State<Admin>,
    Extension(role): Extension<Role>,
) -> Result<Json<PrunedJson>, ApiError> {
    role.check_operator("a pruning pass")?;
    let pruned = admin.runtime.prune_finished().await?;
    tracing::info!(?pruned, by = %role.who(), "pruned finished jobs through the admin API");
    Ok(Json(PrunedJson { pruned }))
}

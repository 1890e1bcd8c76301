//! The admin HTTP API (feature `admin`): an axum [`Router`] to mount in your
//! own app, or to serve as is (the demo does).
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /jobs` | submit `{"machine", "state", "options"}` (201) |
//! | `GET /jobs` | list, filtered by `machine`, `queue`, `state`, `status`, paged by `after` and `limit`, `order` oldest or newest first, with how many match |
//! | `GET /jobs/{id}` | one job |
//! | `DELETE /jobs/{id}` | delete a finished job with its history (204; 409 for one that has not finished) |
//! | `PUT /jobs/{id}/state` | move along a declared transition (409 otherwise, with the allowed targets) |
//! | `POST /jobs/{id}/run` | run a pending job now |
//! | `POST /jobs/{id}/cancel` | cancel |
//! | `POST /jobs/retry`, `POST /jobs/cancel` | retry or cancel the jobs a filter (`machine`, `queue`, `state`, `status`) matches, one page (`after`, `limit`) per call; answers how many it touched and the `next` page |
//! | `POST /jobs/{id}/retry` | retry a failed or cancelled job from the state it stopped in (409 otherwise) |
//! | `GET /jobs/{id}/history` | the history, and the path it took (states visited, transitions taken) |
//! | `GET /events` | server-sent events: `changed` whenever jobs change |
//! | `GET /machines`, `GET /machines/{name}` | graphs with live counts per state |
//! | `GET /queues` | every queue, with its jobs per lifecycle state and whether it is paused |
//! | `PUT /queues/{name}/pause`, `PUT /queues/{name}/resume` | stop or restart claims of a queue's jobs, in every process sharing the storage (operator token) |
//! | `GET /periodic` | the periodic jobs, with their schedules and last and next ticks |
//! | `GET /retention`, `POST /retention/prune` | the retention policy; a pruning pass now (operator token) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /whoami` | the caller token's role: `operator`, `read_only`, or `machines` (with the token's name and machines) |
//! | `GET /health`, `GET /openapi.json` | public: no token needed |
//! | `GET /ui` | the execution-graph visualizer (public page; it asks for the token and sends it with every call) |
//!
//! Machine states go in and out as the enum's serde JSON, externally tagged:
//! `{"Created": {"sku": "a", "qty": 1}}`. Every error is an RFC 9457
//! problem (`application/problem+json`: `type`, `title`, `status`,
//! `detail`) with a stable `code` (and `message`, the same text as
//! `detail`): 400 malformed JSON or a state that
//! does not decode or an empty queue name, 401 a missing or wrong token, 403
//! a change asked with the read-only token ([`AdminConfig::read_only_token`]),
//! or one a machine token may not make ([`AdminConfig::machine_token`]), 404 an unknown job or
//! machine, 409 an illegal state change, a retry of a job that did not
//! fail and was not cancelled, or a deletion of one that has not finished, 413 a body over the limit (1 MiB by
//! default), 422 a submitted state that is not initial.
//!
//! ```no_run
//! use runekernel::admin::{self, AdminConfig};
//! use runekernel::Runtime;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder().build().await?;
//! let app = admin::router(runtime, AdminConfig::new("a-long-random-token")?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7700").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod error;
mod events;
mod extract;
mod jobs;
mod machines;
mod maintenance;
mod openapi;
mod queues;
mod ui;
mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::{middleware, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{TokenError, MIN_TOKEN_LEN};
pub use error::ApiError;

use crate::runtime::Runtime;

/// How the admin API is set up.
#[derive(Clone)]
pub struct AdminConfig {
    tokens: auth::Tokens,
    body_limit: usize,
}

impl AdminConfig {
    /// Requires `Authorization: Bearer <token>` on every endpoint but
    /// `/health` and `/openapi.json`; bodies up to 1 MiB.
    ///
    /// # Errors
    /// [`TokenError`] for a token that is empty, shorter than
    /// [`MIN_TOKEN_LEN`] bytes, or padded with white space.
    ///
    /// ```
    /// use runekernel::admin::{AdminConfig, TokenError};
    ///
    /// assert!(AdminConfig::new("3f9c2a7be1d04c55a8e6").is_ok());
    /// assert_eq!(AdminConfig::new("").unwrap_err(), TokenError::Empty);
    /// assert!(matches!(AdminConfig::new("hunter2"), Err(TokenError::TooShort { len: 7 })));
    /// ```
    pub fn new(token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into();
        auth::check_token(&token)?;
        Ok(AdminConfig {
            tokens: auth::Tokens {
                operator: Arc::from(token),
                read_only: None,
                machines: Vec::new(),
            },
            body_limit: 1024 * 1024,
        })
    }

    /// Also accepts `token` for reading: with it, every `GET` works and
    /// every change is refused (403 `read_only_token`).
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`TokenError::Reused`] for the operator
    /// token.
    ///
    /// ```
    /// use runekernel::admin::AdminConfig;
    ///
    /// let config = AdminConfig::new("3f9c2a7be1d04c55a8e6")?.read_only_token("9d1e0b77c2a54f3e8b10")?;
    /// # let _ = config;
    /// # Ok::<(), runekernel::admin::TokenError>(())
    /// ```
    pub fn read_only_token(mut self, token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into();
        auth::check_token(&token)?;
        if self.tokens.contains(&token) {
            return Err(TokenError::Reused);
        }
        self.tokens.read_only = Some(Arc::from(token));
        Ok(self)
    }

    /// Also accepts `token`, called `name`, to read everything and to
    /// change the jobs of `machines` alone: submit, move, run, cancel,
    /// retry and delete them, and retry or cancel them in bulk with a
    /// filter that names one of them. Anything else it would change is
    /// refused (403 `machine_not_allowed`, or `operator_only` for a queue's
    /// pause). Each change it makes is recorded in the job's history as
    /// made by `admin:<name>` (the operator token's as `admin`).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`TokenError::Reused`] for a token already
    /// accepted; [`TokenError::BadName`] for a name that is not letters,
    /// digits, `-` or `_`; [`TokenError::NoMachines`].
    ///
    /// ```
    /// use runekernel::admin::AdminConfig;
    ///
    /// let config = AdminConfig::new("3f9c2a7be1d04c55a8e6")?
    ///     .machine_token("billing", "51c0e8d2a9b74f6e9d03", ["invoice", "refund"])?;
    /// # let _ = config;
    /// # Ok::<(), runekernel::admin::TokenError>(())
    /// ```
    pub fn machine_token<I, S>(mut self, name: &str, token: impl Into<String>, machines: I) -> Result<Self, TokenError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let token = token.into();
        auth::check_token(&token)?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(TokenError::BadName(name.to_owned()));
        }
        if self.tokens.contains(&token) {
            return Err(TokenError::Reused);
        }
        let machines: Vec<String> = machines.into_iter().map(Into::into).collect();
        if machines.is_empty() {
            return Err(TokenError::NoMachines(name.to_owned()));
        }
        self.tokens.machines.push(auth::MachineToken {
            name: Arc::from(name),
            token: Arc::from(token),
            machines: Arc::from(machines),
        });
        Ok(self)
    }

    /// The largest request body accepted, in bytes (413 beyond it).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &"<redacted>")
            .field("read_only_token", &self.tokens.read_only.as_ref().map(|_| "<redacted>"))
            .field(
                "machine_tokens",
                &self
                    .tokens
                    .machines
                    .iter()
                    .map(|m| (&*m.name, &*m.machines))
                    .collect::<Vec<_>>(),
            )
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) runtime: Runtime,
    /// The OpenAPI document of the router this state belongs to.
    pub(crate) openapi: Arc<utoipa::openapi::OpenApi>,
}

/// The admin API for `runtime`.
///
/// Every handler is registered together with its `#[utoipa::path]`
/// documentation, so `/openapi.json` describes exactly what is served.
pub fn router(runtime: Runtime, config: AdminConfig) -> Router {
    let protected = OpenApiRouter::default()
        .routes(routes!(jobs::submit, jobs::list))
        .routes(routes!(jobs::get, jobs::delete))
        .routes(routes!(jobs::set_state))
        .routes(routes!(jobs::run))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::retry_all))
        .routes(routes!(jobs::cancel_all))
        .routes(routes!(jobs::history))
        .routes(routes!(events::stream))
        .routes(routes!(machines::list))
        .routes(routes!(machines::get))
        .routes(routes!(machines::metrics))
        .routes(routes!(machines::whoami))
        .routes(routes!(queues::list))
        .routes(routes!(queues::pause))
        .routes(routes!(queues::resume))
        .routes(routes!(maintenance::periodic))
        .routes(routes!(maintenance::retention))
        .routes(routes!(maintenance::prune))
        .route_layer(middleware::from_fn_with_state(
            config.tokens.clone(),
            auth::require_token,
        ));
    let (routes, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(machines::health))
        .routes(routes!(openapi::serve))
        .routes(routes!(ui::page))
        .routes(routes!(ui::slash))
        .routes(routes!(ui::file))
        .merge(protected)
        .split_for_parts();
    routes
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(config.body_limit))
        .with_state(Admin {
            runtime,
            openapi: Arc::new(document),
        })
}

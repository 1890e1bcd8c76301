//! The parts of sqlx the Postgres backend uses, under the paths of the `sqlx`
//! crate, taken from `sqlx-core` and `sqlx-postgres` 0.8.
//!
//! Why not the `sqlx` crate itself: sqlx 0.9.0 does not set `TCP_NODELAY`
//! (launchbadge/sqlx#4335), so a message larger than one TCP segment can
//! wait for the server's delayed ACK, which slows bulk submits. sqlx 0.8
//! sets the option, but its `sqlx` crate names `sqlx-sqlite`, whose
//! `libsqlite3-sys` clashes with rusqlite's (Cargo checks `links` across
//! optional dependencies too). Once a sqlx 0.9 release sets `TCP_NODELAY`,
//! this module gives way to the `sqlx` crate again.

pub(crate) use sqlx_core::connection::Connection;
pub(crate) use sqlx_core::error::Error;
pub(crate) use sqlx_core::executor::Executor;
pub(crate) use sqlx_core::query::query;
pub(crate) use sqlx_core::query_as::query_as;
pub(crate) use sqlx_core::query_scalar::query_scalar;
pub(crate) use sqlx_core::row::Row;
pub(crate) use sqlx_core::transaction::Transaction;
pub(crate) use sqlx_postgres::Postgres;

/// Migrations (`sqlx::migrate`).
pub(crate) mod migrate {
    pub(crate) use sqlx_core::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
}

/// Queries (`sqlx::query`).
pub(crate) mod query {
    pub(crate) use sqlx_core::query::Query;
}

/// The Postgres driver (`sqlx::postgres`).
pub(crate) mod postgres {
    pub(crate) use sqlx_postgres::{
        PgArguments, PgConnectOptions, PgConnection, PgDatabaseError, PgListener, PgPool, PgPoolOptions, PgRow,
    };
}

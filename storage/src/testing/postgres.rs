//! Helpers for tests against a real Postgres: where the database is, and one
//! throwaway schema per test so tests run in parallel and clean up.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, Executor};

/// The test database from `DATABASE_URL`.
///
/// Returns `None` (after printing a notice) when it is unset, so a test can
/// skip itself.
///
/// # Panics
/// When `DATABASE_URL` is unset and `CI=true`: in CI a missing database is a
/// failure, not a skip.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("DATABASE_URL is not set, and CI=true: the Postgres tests must run in CI")
        }
        _ => {
            eprintln!("DATABASE_URL is not set: skipping a Postgres test");
            None
        }
    }
}

/// A schema name no other test uses: `prefix`, the process id and a counter.
pub fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops a test schema and everything in it.
///
/// # Panics
/// When the database cannot be reached.
pub async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect to drop a test schema");
    pool.execute(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .await
    .expect("drop a test schema");
    pool.close().await;
}

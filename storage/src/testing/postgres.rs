//! Helpers for tests against a real Postgres: where the database is, and one
//! throwaway schema per test so tests run in parallel and clean up.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sqlx;
use sqlx::Executor;

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

/// Throwaway schemas that are dropped when this guard is, even if the test
/// panicked.
pub struct TestSchemas {
    url: String,
    names: std::sync::Mutex<Vec<String>>,
}

impl TestSchemas {
    /// A guard for schemas in the database at `url`.
    pub fn new(url: &str) -> Self {
        TestSchemas {
            url: url.to_owned(),
            names: std::sync::Mutex::default(),
        }
    }

    /// A new unique schema name, dropped with the guard.
    pub fn fresh(&self, prefix: &str) -> String {
        let name = unique_schema(prefix);
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(name.clone());
        name
    }
}

impl Drop for TestSchemas {
    fn drop(&mut self) {
        let names = std::mem::take(self.names.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner));
        let url = self.url.clone();
        // A thread of its own: the guard may be dropped inside a runtime.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                for name in names {
                    drop_schema(&url, &name).await;
                }
            });
        });
        if cleanup.join().is_err() {
            eprintln!("could not drop the test schemas");
        }
    }
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
    pool.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
        .await
        .expect("drop a test schema");
    pool.close().await;
}

//! The schema and its migrations. `PRAGMA user_version` holds the version a
//! database is at; migration `i` (counting from 0) takes it from version `i`
//! to `i + 1`. A new database runs them all, so every migration runs in every
//! test.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::StorageError;

use super::rows::backend;

/// Every migration, oldest first.
const MIGRATIONS: [&str; 5] = [
    include_str!("migrations/0001_jobs.sql"),
    include_str!("migrations/0002_checks_without_in_lists.sql"),
    include_str!("migrations/0003_duties.sql"),
    include_str!("migrations/0004_queues.sql"),
    include_str!("migrations/0005_cancel_reason.sql"),
];

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Brings the database to [`SCHEMA_VERSION`], in one transaction holding the
/// write lock, so processes opening the same file at once migrate it once.
/// A database of a newer version is refused and left untouched.
pub(super) fn migrate(conn: &Connection) -> Result<(), StorageError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(backend)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)?;
    let from = usize::try_from(version).unwrap_or(usize::MAX);
    if from > SCHEMA_VERSION {
        return Err(StorageError::backend(format!(
            "this SQLite database has RuneKernel schema version {version}, but this build knows only up to \
             {SCHEMA_VERSION}; upgrade RuneKernel to open it"
        )));
    }
    for (to, sql) in (1_i64..).zip(MIGRATIONS).skip(from) {
        let at = to - 1;
        tx.execute_batch(sql).map_err(|e| {
            StorageError::backend(format!(
                "cannot migrate the RuneKernel SQLite schema from version {at} to {to}: {e}"
            ))
        })?;
        tx.pragma_update(None, "user_version", to).map_err(backend)?;
        tracing::info!(from = at, to, "migrated the RuneKernel SQLite schema");
    }
    tx.commit().map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_reaches_the_latest_version() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION as i64);
        migrate(&conn).expect("migrating an up-to-date database does nothing");
    }

    #[test]
    fn no_constraint_or_index_uses_an_in_list() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
            .unwrap();
        let schema: Vec<(String, String)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(schema.iter().any(|(name, _)| name == "rk_jobs_finished"));
        for (name, sql) in schema {
            assert!(!sql.contains(" IN ("), "{name} uses an IN list: {sql}");
        }
    }
}

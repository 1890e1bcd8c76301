//! Which job rows hold changes that are committed but not yet durable, so a
//! claim can tell whether it may be answered before its own fsync.
//!
//! A claim's own write is safe to lose: a power loss that undoes it puts the
//! job back as it was, like a worker that died before its first commit, and
//! the lease tokens it reserved were only ever seen by processes that died
//! with the machine. What must not happen is a step running on a transition
//! that a power loss could undo (the previous step would run again after the
//! next one). So a claim is answered as soon as it commits only if every job
//! it returns was last changed by a durable transaction; otherwise it waits
//! for the fsync like every other operation.
//!
//! Changes are seen through SQLite's update hook, so no write path can be
//! forgotten. Another process's writes are not seen row by row: when
//! `PRAGMA data_version` shows one, every claim waits until an fsync made
//! after it (which covers the whole WAL) is done.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::error::StorageError;

use super::rows::backend;

/// A transaction's place in the order the writer commits them.
pub(super) type Seq = u64;

/// The table whose rows claims return.
const JOBS: &str = "rk_jobs";

/// Shared by the writer thread (which records changes) and the sync thread
/// (which records durability).
#[derive(Default)]
pub(super) struct Unsynced {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The transaction being written.
    current: Seq,
    /// Every transaction up to this one is durable.
    durable: Seq,
    /// The last transaction that may follow another process's writes.
    foreign: Seq,
    /// `PRAGMA data_version` as last read: it changes when another
    /// connection commits.
    data_version: i64,
    /// Job rows (by rowid) changed since `durable`, with the last
    /// transaction that changed each.
    rows: HashMap<i64, Seq>,
}

impl Unsynced {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts recording `conn`'s changes to job rows.
    pub(super) fn watch(self: &std::sync::Arc<Self>, conn: &Connection) -> Result<(), StorageError> {
        let unsynced = std::sync::Arc::clone(self);
        conn.update_hook(Some(move |_, _: &str, table: &str, rowid| {
            if table == JOBS {
                let mut state = unsynced.state();
                let current = state.current;
                state.rows.insert(rowid, current);
            }
        }))
        .map_err(backend)
    }

    /// A transaction has begun on `conn` (and holds the write lock, so no
    /// other process commits until it ends); returns its sequence number.
    pub(super) fn begin(&self, conn: &Connection) -> Seq {
        let data_version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)));
        let mut state = self.state();
        state.current += 1;
        match data_version {
            Ok(version) if version == state.data_version => {}
            Ok(version) => {
                state.data_version = version;
                state.foreign = state.current;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read data_version; claims wait for the next fsync");
                state.foreign = state.current;
            }
        }
        state.current
    }

    /// Every transaction up to `seq` is durable.
    pub(super) fn synced(&self, seq: Seq) {
        let mut state = self.state();
        if seq > state.durable {
            state.durable = seq;
            state.rows.retain(|_, changed| *changed > seq);
        }
    }

    /// Whether another process may have committed something that is not
    /// yet durable: then even a transaction that wrote nothing waits for
    /// an fsync (which covers the whole WAL) before its reads are answered.
    pub(super) fn foreign_pending(&self) -> bool {
        let state = self.state();
        state.foreign > state.durable
    }

    /// Whether every job row in `rowids` was last changed by a durable
    /// transaction (and no other process's write may be pending).
    pub(super) fn all_durable(&self, rowids: impl IntoIterator<Item = i64>) -> bool {
        let state = self.state();
        state.foreign <= state.durable
            && rowids
                .into_iter()
                .all(|rowid| state.rows.get(&rowid).is_none_or(|&changed| changed <= state.durable))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A database with a watched connection whose first transaction is
    /// durable.
    fn watched() -> (tempfile::TempDir, Connection, Arc<Unsynced>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("jobs.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE rk_jobs (n INTEGER); CREATE TABLE other (n);")
            .unwrap();
        let unsynced = Arc::new(Unsynced::default());
        unsynced.watch(&conn).unwrap();
        let first = unsynced.begin(&conn);
        unsynced.synced(first);
        (dir, conn, unsynced)
    }

    #[test]
    fn a_row_changed_by_a_transaction_is_unsynced_until_that_transaction_is_durable() {
        let (_dir, conn, unsynced) = watched();
        let second = unsynced.begin(&conn);
        conn.execute("INSERT INTO rk_jobs (rowid, n) VALUES (7, 1)", [])
            .unwrap();
        conn.execute("INSERT INTO other (rowid, n) VALUES (8, 1)", []).unwrap();
        assert!(!unsynced.all_durable([7]));
        assert!(unsynced.all_durable([8]), "only job rows are watched");
        let third = unsynced.begin(&conn);
        unsynced.synced(second);
        assert!(unsynced.all_durable([7]));

        conn.execute("UPDATE rk_jobs SET n = 2 WHERE rowid = 7", []).unwrap();
        assert!(!unsynced.all_durable([7, 9]));
        unsynced.synced(third);
        assert!(unsynced.all_durable([7, 9]));
    }

    #[test]
    fn another_processs_write_makes_every_claim_wait_for_an_fsync_after_it() {
        let (dir, conn, unsynced) = watched();
        assert!(unsynced.all_durable([1]));

        let other = Connection::open(dir.path().join("jobs.db")).unwrap();
        other
            .execute("INSERT INTO rk_jobs (rowid, n) VALUES (1, 1)", [])
            .unwrap();
        let after = unsynced.begin(&conn);
        assert!(!unsynced.all_durable([2]), "any row may be another process's");
        unsynced.synced(after);
        assert!(unsynced.all_durable([1, 2]));
    }
}

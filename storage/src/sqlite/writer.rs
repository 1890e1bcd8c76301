//! The single writer: one thread owns the connection and runs every
//! operation. It takes all operations waiting in its queue (up to a batch
//! limit), runs them in one transaction, each inside its own savepoint so
//! one failing operation does not undo the others, and commits once. The
//! [`Syncer`] answers the callers once the transaction is durable, while
//! this thread goes on with the next one. Many transitions therefore share
//! one fsync, and the fsync does not hold the writer up. An operation may
//! ask to be answered as soon as its transaction commits ([`Answer`]).

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::StorageError;

use super::syncer::{Reply, Syncer};

/// When an operation's caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Once its transaction is durable: every operation, unless it says
    /// otherwise.
    WhenDurable,
    /// As soon as its transaction commits: only for a write whose loss in a
    /// power cut would harm nothing (see `unsynced.rs`).
    WhenCommitted,
}

/// An operation: runs inside the open transaction (or is told that the
/// transaction could not begin), returns how and when to answer.
type Op = Box<dyn FnOnce(Result<&Connection, &rusqlite::Error>) -> (Reply, Answer) + Send>;

/// The handle to the writer thread. Dropping every handle stops the thread
/// once its queue is empty.
#[derive(Clone)]
pub(super) struct Writer {
    sender: mpsc::Sender<Op>,
}

impl Writer {
    /// Starts the thread that owns `conn` and hands its transactions,
    /// committed, to `syncer`.
    pub(super) fn spawn(conn: Connection, max_batch: usize, syncer: Syncer) -> Result<Self, StorageError> {
        let (sender, receiver) = mpsc::channel::<Op>();
        thread::Builder::new()
            .name("runekernel-sqlite".into())
            .spawn(move || run(&conn, &receiver, max_batch.max(1), &syncer))
            .map_err(StorageError::backend)?;
        Ok(Writer { sender })
    }

    /// Runs `f` in the writer's next transaction and returns its result once
    /// that transaction is durable.
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        self.call_answering(move |conn| f(conn).map(|value| (value, Answer::WhenDurable)))
            .await
    }

    /// Runs `f` in the writer's next transaction and returns its result when
    /// `f` says: once the transaction is durable, or as soon as it commits.
    pub(super) async fn call_answering<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Answer), StorageError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, &OP, f),
                Err(error) => Err(StorageError::backend(error.to_string())),
            };
            let (result, answer) = match result {
                Ok((value, answer)) => (Ok(value), answer),
                Err(error) => (Err(error), Answer::WhenDurable),
            };
            let reply: Reply = Box::new(move |error: Option<&str>| {
                let result = match error {
                    Some(error) => Err(StorageError::backend(error.to_owned())),
                    None => result,
                };
                // The caller may have given up waiting; that is fine.
                let _ = tx.send(result);
            });
            (reply, answer)
        });
        self.sender.send(op).map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }
}

/// A named savepoint's statements, prepared once per connection.
struct Savepoint {
    begin: &'static str,
    release: &'static str,
    rollback: &'static str,
}

/// Around each operation of a group commit.
const OP: Savepoint = Savepoint {
    begin: "SAVEPOINT rk_op",
    release: "RELEASE rk_op",
    rollback: "ROLLBACK TO rk_op",
};

/// Runs a cached statement that returns no rows.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs `f` inside `savepoint`: what it wrote is undone if it fails.
fn in_savepoint<T>(
    conn: &Connection,
    savepoint: &Savepoint,
    f: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    exec(conn, savepoint.begin).map_err(StorageError::backend)?;
    match f(conn) {
        Ok(value) => {
            exec(conn, savepoint.release).map_err(StorageError::backend)?;
            Ok(value)
        }
        Err(error) => {
            let undone = exec(conn, savepoint.rollback).and_then(|()| exec(conn, savepoint.release));
            if let Err(rollback) = undone {
                tracing::error!(%rollback, "rolling back a failed storage operation failed");
            }
            Err(error)
        }
    }
}

/// Answers `ops` with `error` without running them.
fn refuse(ops: impl IntoIterator<Item = Op>, error: &rusqlite::Error) {
    for op in ops {
        op(Err(error)).0(None);
    }
}

/// The error of a statement that ran no further: SQLite's `SQLITE_ABORT`,
/// with `why`.
fn aborted(why: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT), Some(why))
}

fn run(conn: &Connection, receiver: &mpsc::Receiver<Op>, max_batch: usize, syncer: &Syncer) {
    let span = tracing::debug_span!("sqlite_writer");
    let _entered = span.enter();
    while let Ok(first) = receiver.recv() {
        let mut ops = vec![first];
        while ops.len() < max_batch {
            match receiver.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        // After a failed fsync nothing runs, not even a claim that would be
        // answered at its commit: what the disk kept is unknown.
        if let Some(failed) = syncer.failed() {
            refuse(ops, &aborted(failed.to_owned()));
            continue;
        }
        let changes_before = conn.total_changes();
        if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
            tracing::error!(%error, "cannot begin a transaction");
            refuse(ops, &error);
            continue;
        }
        let seq = syncer.begin(conn);
        let mut ops = ops.into_iter();
        let (mut replies, mut answers) = (Vec::new(), Vec::new());
        for op in ops.by_ref() {
            let (reply, answer) = op(Ok(conn));
            replies.push(reply);
            answers.push(answer);
            // SQLite rolls a whole transaction back by itself on some
            // errors (SQLITE_FULL, an I/O error during a spill). What ran
            // in it is undone; what would run next would run in autocommit,
            // each statement written at once yet reported failed at COMMIT.
            if conn.is_autocommit() {
                break;
            }
        }
        if conn.is_autocommit() {
            let message = "SQLite rolled the group commit back after an operation in it failed (disk full or an \
                           I/O error); nothing of this batch was written";
            tracing::error!("{message}");
            refuse(ops, &aborted(message.to_owned()));
            for reply in replies {
                reply(Some(message));
            }
            continue;
        }
        tracing::trace!(batch = replies.len(), "group commit");
        match exec(conn, "COMMIT") {
            Ok(()) => {
                let mut durable = Vec::with_capacity(replies.len());
                for (reply, answer) in replies.into_iter().zip(answers) {
                    match answer {
                        Answer::WhenCommitted => reply(syncer.failed()),
                        Answer::WhenDurable => durable.push(reply),
                    }
                }
                let changed = conn.total_changes() != changes_before || syncer.foreign_pending();
                syncer.committed(seq, durable, changed);
            }
            Err(error) => {
                let _ = exec(conn, "ROLLBACK");
                let message = error.to_string();
                for reply in replies {
                    reply(Some(&message));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A WAL database at `path` with a table `t`, and a writer over it
    /// whose syncer flushes with `sync`.
    fn writer(path: &Path, sync: super::super::syncer::SyncFn) -> Writer {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE IF NOT EXISTS t (n);")
            .unwrap();
        let syncer = Syncer::for_wal(&conn, path, sync).unwrap();
        Writer::spawn(conn, 64, syncer).unwrap()
    }

    fn rows(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0)).unwrap()
    }

    fn insert(conn: &Connection) -> Result<(), StorageError> {
        conn.execute("INSERT INTO t VALUES (1)", [])
            .map(|_| ())
            .map_err(StorageError::backend)
    }

    #[tokio::test]
    async fn a_batch_sqlite_rolled_back_runs_no_further_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let writer = writer(&path, File::sync_data);
        // Holds the writer in one batch while the next one queues up.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let held = tokio::spawn({
            let writer = writer.clone();
            async move { writer.call(move |_| gate.recv().map_err(StorageError::backend)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // The next batch: a write, then an operation after which the
        // transaction is gone (as SQLite leaves it after SQLITE_FULL), then
        // two more writes.
        let mut calls = Vec::new();
        calls.push(tokio::spawn({
            let writer = writer.clone();
            async move { writer.call(insert).await }
        }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        calls.push(tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .call(|conn| conn.execute_batch("ROLLBACK").map_err(StorageError::backend))
                    .await
            }
        }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        for _ in 0..2 {
            calls.push(tokio::spawn({
                let writer = writer.clone();
                async move { writer.call(insert).await }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        for call in calls {
            let error = call.await.unwrap().unwrap_err().to_string();
            assert!(error.contains("rolled the group commit back"), "{error}");
        }
        assert_eq!(rows(&path), 0, "no operation ran outside the transaction");
        writer.call(insert).await.unwrap();
        assert_eq!(rows(&path), 1, "the next batch is written");
    }

    fn failing(_: &File) -> io::Result<()> {
        Err(io::Error::other("the disk is gone"))
    }

    #[tokio::test]
    async fn after_a_failed_fsync_nothing_runs_not_even_an_operation_answered_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let writer = writer(&path, failing);
        let error = writer.call(insert).await.unwrap_err().to_string();
        assert!(error.contains("fsync failed"), "{error}");
        let ran = Arc::new(AtomicBool::new(false));
        let claim = {
            let ran = Arc::clone(&ran);
            writer.call_answering(move |conn| {
                ran.store(true, Ordering::SeqCst);
                insert(conn).map(|()| ((), Answer::WhenCommitted))
            })
        };
        let error = claim.await.unwrap_err().to_string();
        assert!(error.contains("fsync failed"), "{error}");
        assert!(!ran.load(Ordering::SeqCst), "the operation was not run");
    }

    static SYNCS: AtomicUsize = AtomicUsize::new(0);

    fn counting(file: &File) -> io::Result<()> {
        SYNCS.fetch_add(1, Ordering::SeqCst);
        file.sync_data()
    }

    #[tokio::test]
    async fn a_read_after_another_processs_commit_waits_for_an_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let writer = writer(&path, counting);
        writer.call(insert).await.unwrap();
        // Another process commits at `synchronous = NORMAL`: in its WAL
        // frames, not yet durable.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("PRAGMA synchronous = NORMAL;").unwrap();
        insert(&other).unwrap();
        let before = SYNCS.load(Ordering::SeqCst);
        let seen: i64 = writer
            .call(|conn| {
                conn.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
                    .map_err(StorageError::backend)
            })
            .await
            .unwrap();
        assert_eq!(seen, 2, "the read saw the other process's row");
        assert!(
            SYNCS.load(Ordering::SeqCst) > before,
            "so it was answered only after an fsync of the WAL"
        );
        // With nothing new from anyone, a read needs no fsync.
        let before = SYNCS.load(Ordering::SeqCst);
        writer
            .call(|conn| {
                conn.query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0))
                    .map_err(StorageError::backend)
            })
            .await
            .unwrap();
        assert_eq!(SYNCS.load(Ordering::SeqCst), before);
    }
}

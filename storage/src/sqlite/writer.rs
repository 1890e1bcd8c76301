//! The single writer: one thread owns the connection and runs every
//! operation. It takes all operations waiting in its queue (up to a batch
//! limit), runs them in one transaction, each inside its own savepoint so
//! one failing operation does not undo the others, commits once, and only
//! then answers the callers. Many transitions therefore share one fsync.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::StorageError;

/// Called after the transaction ends, with the commit's error if it failed.
type Reply = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;
/// An operation: runs inside the open transaction (or is told that the
/// transaction could not begin), returns how to answer.
type Op = Box<dyn FnOnce(Result<&Connection, &rusqlite::Error>) -> Reply + Send>;

/// The handle to the writer thread. Dropping every handle stops the thread
/// once its queue is empty.
#[derive(Clone)]
pub(super) struct Writer {
    sender: mpsc::Sender<Op>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn spawn(conn: Connection, max_batch: usize) -> Result<Self, StorageError> {
        let (sender, receiver) = mpsc::channel::<Op>();
        thread::Builder::new()
            .name("runekernel-sqlite".into())
            .spawn(move || run(&conn, &receiver, max_batch.max(1)))
            .map_err(StorageError::backend)?;
        Ok(Writer { sender })
    }

    /// Runs `f` in the writer's next transaction and returns its result once
    /// that transaction has committed.
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, &OP, f),
                Err(error) => Err(StorageError::backend(error.to_string())),
            };
            Box::new(move |commit_error| {
                let result = match commit_error {
                    Some(error) => Err(StorageError::backend(error.to_string())),
                    None => result,
                };
                // The caller may have given up waiting; that is fine.
                let _ = tx.send(result);
            })
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

fn run(conn: &Connection, receiver: &mpsc::Receiver<Op>, max_batch: usize) {
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
        if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
            tracing::error!(%error, "cannot begin a transaction");
            for op in ops {
                op(Err(&error))(None);
            }
            continue;
        }
        let replies: Vec<Reply> = ops.into_iter().map(|op| op(Ok(conn))).collect();
        let committed = exec(conn, "COMMIT");
        if committed.is_err() {
            let _ = exec(conn, "ROLLBACK");
        }
        tracing::trace!(batch = replies.len(), "group commit");
        let error = committed.err();
        for reply in replies {
            reply(error.as_ref());
        }
    }
}

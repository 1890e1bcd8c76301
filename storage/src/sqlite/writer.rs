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
        let changes_before = conn.total_changes();
        if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
            tracing::error!(%error, "cannot begin a transaction");
            for op in ops {
                op(Err(&error)).0(None);
            }
            continue;
        }
        let seq = syncer.begin(conn);
        let (replies, answers): (Vec<Reply>, Vec<Answer>) = ops.into_iter().map(|op| op(Ok(conn))).unzip();
        tracing::trace!(batch = replies.len(), "group commit");
        match exec(conn, "COMMIT") {
            Ok(()) => {
                let mut durable = Vec::with_capacity(replies.len());
                for (reply, answer) in replies.into_iter().zip(answers) {
                    match answer {
                        Answer::WhenCommitted => reply(None),
                        Answer::WhenDurable => durable.push(reply),
                    }
                }
                syncer.committed(seq, durable, conn.total_changes() != changes_before);
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

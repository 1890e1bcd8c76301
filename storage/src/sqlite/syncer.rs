//! Durability off the writer thread: pipelined group commit.
//!
//! With [`Synchronous::Full`](super::Synchronous::Full) the connection runs
//! with `synchronous = NORMAL`, so `COMMIT` writes the transaction's frames to
//! the WAL without waiting for the disk, and the writer thread goes on with
//! the next transaction at once. This module's thread then fsyncs the WAL
//! file once for every transaction committed meanwhile, and only after that
//! answers their callers. The disk's flush and the next transaction's work
//! overlap, instead of taking turns on the writer thread.
//!
//! Why this keeps `FULL`'s promise:
//! - an fsync of the WAL file covers every frame written before it began, so
//!   when a caller is answered, its transaction and all earlier ones are on
//!   disk. Every operation, reads included, is answered this way, so nothing
//!   in this process acts on a transaction that is not yet durable;
//! - frames that left the WAL were copied into the database by a checkpoint,
//!   which with `NORMAL` syncs the WAL before and the database file after.
//!
//! A transaction that changed nothing is answered without a new fsync once
//! everything before it is durable. When an fsync fails, the disk may have
//! dropped what it was given, so this and every later answer is that error:
//! the storage must be reopened (as PostgreSQL stops on a failed fsync).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;

use rusqlite::Connection;

use crate::error::StorageError;

use super::unsynced::{Seq, Unsynced};

/// Told, once its transaction is durable (or cannot be), what went wrong, if
/// anything.
pub(super) type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// A committed transaction waiting to be made durable.
pub(super) struct Committed {
    seq: Seq,
    replies: Vec<Reply>,
    /// Whether it wrote anything.
    changed: bool,
}

/// Where the writer hands committed transactions.
pub(super) enum Syncer {
    /// SQLite syncs (or is told not to) inside `COMMIT`: a committed
    /// transaction is answered at once, and nothing needs tracking.
    InCommit,
    /// The sync thread makes them durable; `unsynced` tracks what it has not
    /// yet made durable.
    Wal {
        unsynced: Arc<Unsynced>,
        sender: mpsc::Sender<Committed>,
        /// Set by the sync thread when an fsync failed: from then on the
        /// writer runs nothing and answers everything with this error.
        failed: Arc<OnceLock<String>>,
    },
}

impl Syncer {
    /// A sync thread for the WAL of the database file at `database`, using
    /// `sync` to flush a file; from now on, `conn`'s changes to job rows
    /// are tracked until they are durable.
    pub(super) fn for_wal(conn: &Connection, database: &Path, sync: SyncFn) -> Result<Self, StorageError> {
        let unsynced = Arc::new(Unsynced::default());
        unsynced.watch(conn)?;
        let (sender, receiver) = mpsc::channel();
        let wal = Wal::new(database, sync);
        let durable = Arc::clone(&unsynced);
        let failed = Arc::new(OnceLock::new());
        let failure = Arc::clone(&failed);
        thread::Builder::new()
            .name("runekernel-sqlite-sync".into())
            .spawn(move || run(wal, &receiver, &durable, &failure))
            .map_err(StorageError::backend)?;
        Ok(Syncer::Wal {
            unsynced,
            sender,
            failed,
        })
    }

    /// Why this storage no longer answers, once an fsync has failed: the
    /// disk may have dropped what it was given, so nothing may be read or
    /// written until the database is reopened.
    pub(super) fn failed(&self) -> Option<&str> {
        match self {
            Syncer::InCommit => None,
            Syncer::Wal { failed, .. } => failed.get().map(String::as_str),
        }
    }

    /// Whether a transaction must be synced before it is answered even if
    /// it wrote nothing: another process committed something that may not
    /// be durable yet, and this transaction may have read it.
    pub(super) fn foreign_pending(&self) -> bool {
        match self {
            Syncer::InCommit => false,
            Syncer::Wal { unsynced, .. } => unsynced.foreign_pending(),
        }
    }

    /// What is not yet durable, if anything can be committed and not yet
    /// durable.
    pub(super) fn unsynced(&self) -> Option<Arc<Unsynced>> {
        match self {
            Syncer::InCommit => None,
            Syncer::Wal { unsynced, .. } => Some(Arc::clone(unsynced)),
        }
    }

    /// A transaction has begun on `conn`; returns its sequence number.
    pub(super) fn begin(&self, conn: &Connection) -> Seq {
        match self {
            Syncer::InCommit => 0,
            Syncer::Wal { unsynced, .. } => unsynced.begin(conn),
        }
    }

    /// Answers `replies` once transaction `seq`, which produced them, is
    /// durable.
    pub(super) fn committed(&self, seq: Seq, replies: Vec<Reply>, changed: bool) {
        match self {
            Syncer::InCommit => answer(replies, None),
            Syncer::Wal { sender, .. } => {
                if let Err(mpsc::SendError(committed)) = sender.send(Committed { seq, replies, changed }) {
                    answer(committed.replies, Some("the SQLite sync thread has stopped"));
                }
            }
        }
    }
}

fn answer(replies: Vec<Reply>, error: Option<&str>) {
    for reply in replies {
        reply(error);
    }
}

/// Flushes a file to disk: [`File::sync_data`] in production; tests inject
/// failures.
pub(super) type SyncFn = fn(&File) -> io::Result<()>;

/// The WAL file, opened on first use and again if SQLite replaced it.
struct Wal {
    path: PathBuf,
    file: Option<File>,
    sync: SyncFn,
}

impl Wal {
    fn new(database: &Path, sync: SyncFn) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Wal {
            path: PathBuf::from(path),
            file: None,
            sync,
        }
    }

    /// Makes every frame written to the WAL so far durable.
    fn sync(&mut self) -> io::Result<()> {
        let current = match std::fs::metadata(&self.path) {
            Ok(current) => current,
            // Only a checkpoint that copied every frame into the database
            // (and synced it) removes the WAL.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.file = None;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let reopen = match &self.file {
            Some(file) => !same_file(&file.metadata()?, &current),
            None => true,
        };
        if reopen {
            self.file = Some(File::open(&self.path)?);
            // A new WAL's directory entry must be durable too.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                (self.sync)(&File::open(dir)?)?;
            }
        }
        match &self.file {
            Some(file) => (self.sync)(file),
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// Without inode numbers, the WAL is opened afresh for every sync.
#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

fn run(mut wal: Wal, receiver: &mpsc::Receiver<Committed>, unsynced: &Unsynced, failed: &OnceLock<String>) {
    let span = tracing::debug_span!("sqlite_sync", wal = %wal.path.display());
    let _entered = span.enter();
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        // Everything before this batch is durable: a batch that changed
        // nothing has nothing to wait for.
        if failed.get().is_none() && batch.iter().any(|c| c.changed) {
            if let Err(error) = wal.sync() {
                tracing::error!(%error, "cannot sync the SQLite WAL; every later operation fails");
                // Set before any caller is answered, so the writer refuses
                // the next operation whoever asks.
                let _ = failed.set(format!(
                    "cannot make the SQLite WAL {} durable (fsync failed: {error}); this storage no longer \
                     answers, reopen the database once the disk is healthy",
                    wal.path.display()
                ));
            }
        }
        tracing::trace!(transactions = batch.len(), "synced");
        if failed.get().is_none() {
            unsynced.synced(batch.iter().map(|c| c.seq).max().unwrap_or(0));
        }
        for committed in batch {
            answer(committed.replies, failed.get().map(String::as_str));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    static SYNCS: AtomicUsize = AtomicUsize::new(0);

    fn counting(file: &File) -> io::Result<()> {
        SYNCS.fetch_add(1, Ordering::SeqCst);
        file.sync_data()
    }

    fn failing(_: &File) -> io::Result<()> {
        Err(io::Error::other("the disk is gone"))
    }

    /// Replies that record their answer into `answers`.
    fn replies(answers: &Arc<Mutex<Vec<Option<String>>>>, n: usize) -> Vec<Reply> {
        (0..n)
            .map(|_| {
                let answers = Arc::clone(answers);
                Box::new(move |error: Option<&str>| {
                    answers.lock().unwrap().push(error.map(str::to_owned));
                }) as Reply
            })
            .collect()
    }

    fn wait_for(answers: &Arc<Mutex<Vec<Option<String>>>>, n: usize) -> Vec<Option<String>> {
        for _ in 0..500 {
            if answers.lock().unwrap().len() == n {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
        answers.lock().unwrap().clone()
    }

    /// A syncer for a database whose WAL holds some frames.
    fn wal_syncer(sync: SyncFn) -> (tempfile::TempDir, Syncer) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jobs.db-wal"), b"frames").unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let syncer = Syncer::for_wal(&conn, &dir.path().join("jobs.db"), sync).unwrap();
        (dir, syncer)
    }

    #[test]
    fn a_transaction_is_answered_after_a_sync_of_the_wal_and_one_that_changed_nothing_needs_none() {
        let (_dir, syncer) = wal_syncer(counting);
        let answers = Arc::default();

        syncer.committed(1, replies(&answers, 3), true);
        assert_eq!(wait_for(&answers, 3), vec![None, None, None]);
        // The WAL and, on first opening it, its directory.
        let after_first = SYNCS.load(Ordering::SeqCst);
        assert_eq!(after_first, 2);

        syncer.committed(2, replies(&answers, 1), false);
        assert_eq!(wait_for(&answers, 4).len(), 4);
        assert_eq!(
            SYNCS.load(Ordering::SeqCst),
            after_first,
            "nothing changed, nothing to sync"
        );

        syncer.committed(3, replies(&answers, 1), true);
        assert_eq!(wait_for(&answers, 5).len(), 5);
        assert_eq!(
            SYNCS.load(Ordering::SeqCst),
            after_first + 1,
            "the same WAL is synced again"
        );
    }

    #[test]
    fn a_failed_sync_fails_its_transaction_and_every_later_one() {
        let (_dir, syncer) = wal_syncer(failing);
        let answers = Arc::default();

        syncer.committed(1, replies(&answers, 2), true);
        syncer.committed(2, replies(&answers, 1), false);
        let answers = wait_for(&answers, 3);
        assert_eq!(answers.len(), 3);
        for answer in answers {
            let message = answer.expect("an error");
            assert!(message.contains("fsync failed: the disk is gone"), "{message}");
            assert!(message.contains("jobs.db-wal"), "{message}");
        }
    }
}

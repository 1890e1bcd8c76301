//! The open database, and opening it again after an I/O error.
//!
//! Once a write fails on I/O (a full disk, say), RocksDB answers every
//! later write with that same error until the database is closed and
//! opened again; its C API offers no way to resume. So an operation that
//! fails on I/O marks the handle, and the next operation first closes the
//! database (once the operations still using it finish) and opens it
//! again. While the cause lasts, that fails with a clear error and the
//! next operation tries again; once it is gone (the disk has room), the
//! store works again with every acknowledged write, replayed from the log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rocksdb::ErrorKind;

use super::{Inner, RocksDbOptions};
use crate::error::StorageError;

/// The database a store's operations run on.
pub(super) struct Handle {
    path: PathBuf,
    options: RocksDbOptions,
    /// `None` while it is closed for reopening and the reopening failed.
    open: RwLock<Option<Arc<Inner>>>,
    /// An operation failed on I/O: reopen before the next one.
    reopen: AtomicBool,
}

impl Handle {
    pub(super) fn open(path: &Path, options: RocksDbOptions) -> Result<Self, StorageError> {
        let inner = Inner::open(path, options.clone())?;
        Ok(Handle {
            path: path.to_owned(),
            options,
            open: RwLock::new(Some(Arc::new(inner))),
            reopen: AtomicBool::new(false),
        })
    }

    /// The database to run an operation on, opened again first if an
    /// earlier operation failed on I/O.
    ///
    /// # Errors
    /// When the database had to be opened again and could not be.
    pub(super) fn current(&self) -> Result<Arc<Inner>, StorageError> {
        if self.reopen.load(Ordering::Acquire) {
            self.reopen_now()?;
        }
        self.open
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StorageError::backend(format!("RocksDB at {} is closed", self.path.display())))
    }

    /// Notes how an operation ended: an I/O error marks the database for
    /// reopening.
    pub(super) fn note<T>(&self, result: &Result<T, StorageError>) {
        if let Err(StorageError::Backend(source)) = result {
            let io = source
                .downcast_ref::<rocksdb::Error>()
                .is_some_and(|e| e.kind() == ErrorKind::IOError);
            if io && !self.reopen.swap(true, Ordering::AcqRel) {
                tracing::warn!(path = %self.path.display(), error = %source, "RocksDB failed on I/O; it is opened again before the next operation");
            }
        }
    }

    fn reopen_now(&self) -> Result<(), StorageError> {
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        if !self.reopen.load(Ordering::Acquire) {
            // Another operation reopened it meanwhile.
            return Ok(());
        }
        if let Some(mut old) = open.take() {
            // Operations that started before hold the old database; its
            // directory lock is released once the last of them drops it.
            loop {
                match Arc::try_unwrap(old) {
                    Ok(inner) => break drop(inner),
                    Err(still_used) => {
                        old = still_used;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        let inner = Inner::open(&self.path, self.options.clone())?;
        *open = Some(Arc::new(inner));
        self.reopen.store(false, Ordering::Release);
        tracing::info!(path = %self.path.display(), "RocksDB opened again after an I/O error");
        Ok(())
    }
}

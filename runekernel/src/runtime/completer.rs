//! Batches the commits of all workers (River's job completer): each worker
//! hands its commit over and waits for the result; one task takes every
//! commit waiting at that moment and writes them with a single
//! `Storage::commit_batch`, up to [`IN_FLIGHT`] batches at once. Under load
//! a batch holds every commit that arrived while the writers were busy; with
//! one commit waiting it goes alone, so an idle runtime adds no delay.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::storage::{Commit, Committed, JobRecord, Storage, StorageError};

/// The most commits written in one batch.
const MAX_BATCH: usize = 512;

/// Batches written at once. A job has at most one commit waiting, so
/// concurrent batches never hold the same job; each backend orders its row
/// locks, so they cannot deadlock either.
const IN_FLIGHT: usize = 4;

/// Where a batch answers one worker: its commit handed back, with the result.
type Reply = oneshot::Sender<(Commit, Result<Committed, StorageError>)>;

/// The handle workers commit through.
pub(crate) struct Completer {
    sender: mpsc::UnboundedSender<(Commit, Reply)>,
}

impl Completer {
    /// Starts the batching task; it ends when the handle is dropped.
    pub(crate) fn spawn(storage: Arc<dyn Storage>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(complete(storage, receiver));
        Completer { sender }
    }

    /// Commits through the next batch and leaves the job after in
    /// `record`, the copy the commit was made from (see
    /// `Storage::commit_into`). The commit travels to the batch and back, so
    /// its new payload moves into `record` rather than being copied.
    pub(crate) async fn commit_into(&self, commit: Commit, record: &mut JobRecord) -> Result<(), StorageError> {
        let (reply, answer) = oneshot::channel();
        self.sender.send((commit, reply)).map_err(|_| StorageError::Closed)?;
        let (commit, result) = answer.await.map_err(|_| StorageError::Closed)?;
        record.committed(commit, result?);
        Ok(())
    }
}

async fn complete(storage: Arc<dyn Storage>, mut receiver: mpsc::UnboundedReceiver<(Commit, Reply)>) {
    let writing = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // Wait for a free writer first: commits that arrive meanwhile join
        // the next batch.
        let Ok(writer) = Arc::clone(&writing).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let storage = Arc::clone(&storage);
        tokio::spawn(async move {
            write(storage.as_ref(), batch).await;
            drop(writer);
        });
    }
}

/// Writes one batch and answers each commit's worker.
async fn write(storage: &dyn Storage, batch: Vec<(Commit, Reply)>) {
    let (commits, replies): (Vec<Commit>, Vec<Reply>) = batch.into_iter().unzip();
    tracing::trace!(batch = commits.len(), "committing a batch");
    let results = match storage.commit_batch(&commits).await {
        Ok(results) => results,
        Err(error) => {
            let message = error.to_string();
            commits
                .iter()
                .map(|_| Err(StorageError::backend(message.clone())))
                .collect()
        }
    };
    for ((commit, result), reply) in commits.into_iter().zip(results).zip(replies) {
        // A worker that gave up waiting no longer needs its answer.
        let _ = reply.send((commit, result));
    }
}

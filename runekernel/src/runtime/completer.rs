//! Batches the commits of all workers (River's job completer): each worker
//! hands its commit over and waits for the result; one task takes every
//! commit waiting at that moment and writes them with a single
//! `Storage::commit_batch`. Under load a batch is as large as the number of
//! workers committing at once; with one commit waiting it goes alone, so an
//! idle runtime adds no delay.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::storage::{Commit, JobRecord, Storage, StorageError};

/// The most commits written in one batch.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<JobRecord, StorageError>>;

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

    /// Commits through the next batch and returns this commit's result.
    pub(crate) async fn commit(&self, commit: Commit) -> Result<JobRecord, StorageError> {
        let (reply, result) = oneshot::channel();
        self.sender.send((commit, reply)).map_err(|_| StorageError::Closed)?;
        result.await.map_err(|_| StorageError::Closed)?
    }
}

async fn complete(storage: Arc<dyn Storage>, mut receiver: mpsc::UnboundedReceiver<(Commit, Reply)>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (commits, replies): (Vec<Commit>, Vec<Reply>) = batch.into_iter().unzip();
        tracing::trace!(batch = commits.len(), "committing a batch");
        match storage.commit_batch(commits).await {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    // A worker that gave up waiting no longer needs its answer.
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StorageError::backend(message.clone())));
                }
            }
        }
    }
}

//! Queues: the ones a runtime serves, each by a producer of its own with
//! its own wake-up and, optionally, its own limit on steps at once; and what
//! [`Runtime::queues`](crate::Runtime::queues) reports of every queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;

use crate::storage::{CountRow, JobState};

/// A queue this runtime claims jobs from.
pub(crate) struct ServedQueue {
    /// Its name.
    pub(crate) name: String,
    /// Steps of it at once, within the runtime's workers; `None`: only the
    /// runtime's limit applies.
    pub(crate) limit: Option<usize>,
    /// Wakes its producer when a job of it that this runtime put back for
    /// later comes due.
    pub(crate) wake: Arc<Notify>,
}

/// The queues a runtime serves, by name.
pub(crate) struct ServedQueues(Vec<ServedQueue>);

impl ServedQueues {
    /// The queues `limits` names, each with its limit; or, when it names
    /// none, `defaults` (the registered machines' queues) without limits of
    /// their own.
    pub(crate) fn new(limits: Vec<(String, usize)>, defaults: impl IntoIterator<Item = String>) -> Self {
        let mut queues: Vec<(String, Option<usize>)> = if limits.is_empty() {
            defaults.into_iter().map(|name| (name, None)).collect()
        } else {
            limits.into_iter().map(|(name, n)| (name, Some(n))).collect()
        };
        queues.sort();
        queues.dedup_by(|a, b| a.0 == b.0);
        ServedQueues(
            queues
                .into_iter()
                .map(|(name, limit)| ServedQueue {
                    name,
                    limit,
                    wake: Arc::new(Notify::new()),
                })
                .collect(),
        )
    }

    /// Every served queue, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ServedQueue> {
        self.0.iter()
    }

    /// The served queue `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&ServedQueue> {
        self.0.iter().find(|q| q.name == name)
    }
}

/// One queue as [`Runtime::queues`](crate::Runtime::queues) reports it:
/// whether it is paused, and how many of its jobs are in each lifecycle
/// state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Paused: no process claims its jobs until it is resumed.
    pub paused: bool,
    /// Whether this runtime serves it: claims its jobs, when it has
    /// workers and the queue is not paused.
    pub served_here: bool,
    /// Its jobs waiting to run.
    pub pending: u64,
    /// Its jobs running.
    pub running: u64,
    /// Its jobs completed.
    pub completed: u64,
    /// Its jobs failed.
    pub failed: u64,
    /// Its jobs cancelled.
    pub cancelled: u64,
}

impl QueueInfo {
    /// Queue `name`, not paused, not served here, without jobs.
    pub(crate) fn new(name: &str) -> Self {
        QueueInfo {
            name: name.to_owned(),
            paused: false,
            served_here: false,
            pending: 0,
            running: 0,
            completed: 0,
            failed: 0,
            cancelled: 0,
        }
    }

    /// Every queue that holds jobs, is paused, is served here or is a
    /// registered machine's, sorted by name.
    pub(crate) fn gather<'a>(
        counts: &[CountRow],
        paused: &[String],
        served: &ServedQueues,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Vec<QueueInfo> {
        let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
        for name in known {
            entry(&mut queues, name);
        }
        for queue in served.iter() {
            entry(&mut queues, &queue.name).served_here = true;
        }
        for name in paused {
            entry(&mut queues, name).paused = true;
        }
        for row in counts {
            let info = entry(&mut queues, &row.queue);
            let count = match row.status {
                JobState::Pending => &mut info.pending,
                JobState::Running => &mut info.running,
                JobState::Completed => &mut info.completed,
                JobState::Failed => &mut info.failed,
                JobState::Cancelled => &mut info.cancelled,
            };
            *count += row.count;
        }
        queues.into_values().collect()
    }
}

/// The entry of queue `name` in `queues`, added if it is new.
fn entry<'m>(queues: &'m mut BTreeMap<String, QueueInfo>, name: &str) -> &'m mut QueueInfo {
    queues.entry(name.to_owned()).or_insert_with(|| QueueInfo::new(name))
}

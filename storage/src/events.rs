//! Change notifications: what a runtime waits on instead of polling.

use tokio::sync::broadcast;

use crate::JobId;

/// Something changed in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageEvent {
    /// Jobs were inserted or made pending: a claim may find work.
    JobsReady,
    /// A job was committed (its state or lifecycle changed).
    JobChanged(JobId),
}

/// A broadcast channel of [`StorageEvent`]s, for backends to embed.
///
/// Sending never blocks and never fails: with no subscriber, or a
/// subscriber that lags, events are dropped, and a lagging subscriber
/// learns it lagged (`RecvError::Lagged`) and should re-read what it waits on.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<StorageEvent>,
}

impl EventBus {
    /// A bus holding up to 4096 undelivered events per subscriber.
    pub fn new() -> Self {
        EventBus {
            sender: broadcast::channel(4096).0,
        }
    }

    /// Sends an event to every subscriber.
    pub fn send(&self, event: StorageEvent) {
        // An error only means nobody is subscribed.
        let _ = self.sender.send(event);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<StorageEvent> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

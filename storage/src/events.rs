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

/// Broadcast channels of [`StorageEvent`]s, for backends to embed: one
/// with every event ([`subscribe`](Self::subscribe)) and one with
/// [`StorageEvent::JobsReady`] only ([`subscribe_ready`](Self::subscribe_ready)).
///
/// A runtime's producer only waits for work, so it subscribes to the second;
/// a job's change then reaches a subscriber only when something waits for
/// one (a `Runtime::wait`), and a commit with nobody waiting sends nothing.
///
/// Sending never blocks and never fails: with no subscriber, or a
/// subscriber that lags, events are dropped, and a lagging subscriber
/// learns it lagged (`RecvError::Lagged`) and should re-read what it waits on.
#[derive(Debug, Clone)]
pub struct EventBus {
    all: broadcast::Sender<StorageEvent>,
    ready: broadcast::Sender<StorageEvent>,
}

impl EventBus {
    /// A bus holding up to 4096 undelivered events per subscriber.
    pub fn new() -> Self {
        EventBus {
            all: broadcast::channel(4096).0,
            ready: broadcast::channel(4096).0,
        }
    }

    /// Sends an event to every subscriber that wants it.
    pub fn send(&self, event: StorageEvent) {
        // An error only means nobody is subscribed.
        if event == StorageEvent::JobsReady {
            let _ = self.ready.send(event);
        }
        let _ = self.all.send(event);
    }

    /// A new subscription to every event.
    pub fn subscribe(&self) -> broadcast::Receiver<StorageEvent> {
        self.all.subscribe()
    }

    /// A new subscription to [`StorageEvent::JobsReady`] only.
    pub fn subscribe_ready(&self) -> broadcast::Receiver<StorageEvent> {
        self.ready.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_subscription_gets_no_job_changes_and_a_full_one_gets_both() {
        let bus = EventBus::new();
        let (mut ready, mut all) = (bus.subscribe_ready(), bus.subscribe());
        let id = JobId::from_u128(7);
        bus.send(StorageEvent::JobChanged(id));
        bus.send(StorageEvent::JobsReady);
        assert_eq!(ready.try_recv(), Ok(StorageEvent::JobsReady));
        assert!(ready.try_recv().is_err(), "only JobsReady reaches a ready subscription");
        assert_eq!(all.try_recv(), Ok(StorageEvent::JobChanged(id)));
        assert_eq!(all.try_recv(), Ok(StorageEvent::JobsReady));
    }
}

//! A one-way signal (cancel, lost lease, stopping): raised once, checked at
//! every step, rarely waited on.
//!
//! `tokio_util`'s `CancellationToken` takes a mutex for every check, clone
//! and drop, so a check shared by every executor task made both cores take
//! turns on one lock at every step. Here a check is one atomic load, a
//! clone one reference count, and only a task that waits registers with
//! the `Notify`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A signal shared by its clones: once raised, raised for good.
#[derive(Clone, Default)]
pub(crate) struct Signal(Arc<Shared>);

#[derive(Default)]
struct Shared {
    raised: AtomicBool,
    waiters: Notify,
}

impl Signal {
    /// A signal not yet raised.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Raises the signal and wakes every task waiting on it.
    pub(crate) fn raise(&self) {
        if !self.0.raised.swap(true, Ordering::AcqRel) {
            self.0.waiters.notify_waiters();
        }
    }

    /// Whether the signal has been raised.
    pub(crate) fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::Acquire)
    }

    /// Completes once the signal is raised (at once if it already is).
    pub(crate) async fn raised(&self) {
        let notified = self.0.waiters.notified();
        tokio::pin!(notified);
        // Registered before the check, so a raise in between still wakes us.
        notified.as_mut().enable();
        if self.is_raised() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_raised_signal_is_seen_by_every_clone_and_wakes_waiters() {
        let signal = Signal::new();
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move { signal.raised().await })
        };
        tokio::task::yield_now().await;
        assert!(!signal.is_raised());
        assert!(!waiter.is_finished());
        signal.clone().raise();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
        assert!(signal.is_raised());
        // Already raised: waiting completes at once, raising again is a no-op.
        signal.raise();
        tokio::time::timeout(Duration::from_secs(10), signal.raised())
            .await
            .expect("completes at once");
    }
}

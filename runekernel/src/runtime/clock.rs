//! The runtime's clock: the system clock, or a manual one that only
//! [`Runtime::advance`](crate::Runtime::advance) moves (deterministic mode).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::storage::Millis;

/// Where the manual clock starts: 2024-01-01T00:00:00Z.
const MANUAL_EPOCH_MS: Millis = 1_704_067_200_000;

/// A clock that tells the time in milliseconds since the Unix epoch and
/// sleeps on that time.
#[derive(Clone)]
pub(crate) enum Clock {
    System,
    Manual(Arc<ManualClock>),
}

pub(crate) struct ManualClock {
    now: Mutex<Millis>,
    ticks: watch::Sender<Millis>,
}

impl Clock {
    pub(crate) fn manual() -> Self {
        Clock::Manual(Arc::new(ManualClock {
            now: Mutex::new(MANUAL_EPOCH_MS),
            ticks: watch::channel(MANUAL_EPOCH_MS).0,
        }))
    }

    /// Now, in milliseconds since the Unix epoch.
    pub(crate) fn now(&self) -> Millis {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Manual(m) => *m.now.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub(crate) fn advance(&self, by: Duration) {
        if let Clock::Manual(m) = self {
            let mut now = m.now.lock().unwrap_or_else(PoisonError::into_inner);
            *now = now.saturating_add(millis(by));
            m.ticks.send_replace(*now);
        }
    }

    /// Completes once the clock reads at least `deadline`.
    pub(crate) async fn sleep_until(&self, deadline: Millis) {
        match self {
            Clock::System => {
                let wait = deadline.saturating_sub(self.now()).max(0);
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            Clock::Manual(m) => {
                let mut ticks = m.ticks.subscribe();
                // An error means the clock is gone with its runtime: never wake.
                if ticks.wait_for(|now| *now >= deadline).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Completes after `duration` on this clock.
    pub(crate) async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.now().saturating_add(millis(duration))).await;
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A storage time as a `SystemTime`.
pub(crate) fn system_time(ms: Millis) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_sleeps_until_advanced() {
        let clock = Clock::manual();
        let start = clock.now();
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now() - start, 5_000);
    }
}

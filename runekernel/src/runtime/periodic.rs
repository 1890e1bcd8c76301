//! Periodic jobs: a [`Schedule`] (a cron expression or a fixed interval)
//! and a function that makes each job's initial state, registered with
//! [`RuntimeBuilder::periodic`](super::RuntimeBuilder::periodic).
//!
//! Each tick's job is submitted with the idempotency key
//! `periodic:{name}:{tick}`, the tick in milliseconds since the Unix
//! epoch, so however many runtimes share a storage, and however many of
//! them start at once, each tick has one job: the other inserts find the
//! key taken. Ticks are times on the UTC clock (an interval counts from the
//! Unix epoch), so every runtime computes the same ones.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::machine::StateMachine;
use crate::storage::{JobId, Millis};

use super::clock::{millis, system_time};
use super::{Runtime, RuntimeError, SubmitOptions};

/// At most this many ticks are submitted at once (a long catch-up window
/// over a fine schedule).
const MAX_TICKS_AT_ONCE: usize = 1000;

/// When a periodic job is due: every tick of a cron expression or of a
/// fixed interval. Ticks missed while no runtime ran (downtime) are
/// skipped but for the latest, unless [`catch_up`](Self::catch_up) asks
/// for each.
///
/// ```
/// use std::time::Duration;
/// use runekernel::Schedule;
///
/// let every_five_minutes = Schedule::cron("0 */5 * * * *")?;
/// let nightly = Schedule::cron("0 30 2 * * *")?.catch_up(Duration::from_secs(3 * 24 * 3600));
/// let every_ten_seconds = Schedule::every(Duration::from_secs(10))?;
/// assert!(Schedule::cron("every day").is_err());
/// # Ok::<(), runekernel::ScheduleError>(())
/// ```
#[derive(Clone)]
pub struct Schedule {
    ticks: Ticks,
    catch_up: Option<Duration>,
}

#[derive(Clone)]
enum Ticks {
    Cron(Box<croner::Cron>),
    Every(Millis),
}

/// A schedule that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(
        "`{expression}` is not a cron expression (seconds, minutes, hours, day of month, month, day of week): {reason}"
    )]
    Cron {
        /// The expression.
        expression: String,
        /// What the parser said.
        reason: String,
    },
    /// An interval under one millisecond.
    #[error("a periodic job's interval must be at least 1 ms, not {0:?}")]
    Interval(Duration),
}

impl Schedule {
    /// Every time that matches the cron `expression`, on the UTC clock. Its
    /// fields are seconds (optional: five fields mean second 0), minutes,
    /// hours, day of month, month and day of week, as in
    /// [croner](https://docs.rs/croner).
    ///
    /// # Errors
    /// [`ScheduleError::Cron`] for an expression that does not parse.
    pub fn cron(expression: &str) -> Result<Self, ScheduleError> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| ScheduleError::Cron {
                expression: expression.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Schedule {
            ticks: Ticks::Cron(Box::new(cron)),
            catch_up: None,
        })
    }

    /// Every `interval`, counted from the Unix epoch (so every runtime
    /// agrees on the ticks).
    ///
    /// # Errors
    /// [`ScheduleError::Interval`] for an interval under 1 ms.
    pub fn every(interval: Duration) -> Result<Self, ScheduleError> {
        match millis(interval) {
            ms if ms >= 1 => Ok(Schedule {
                ticks: Ticks::Every(ms),
                catch_up: None,
            }),
            _ => Err(ScheduleError::Interval(interval)),
        }
    }

    /// Runs each tick missed within `window` before now, rather than only
    /// the latest: after downtime, or when a runtime starts.
    #[must_use]
    pub fn catch_up(mut self, window: Duration) -> Self {
        self.catch_up = Some(window);
        self
    }

    /// The first tick strictly after `after`, if there is one.
    fn next_after(&self, after: Millis) -> Option<Millis> {
        match &self.ticks {
            Ticks::Every(every) => after.div_euclid(*every).checked_add(1)?.checked_mul(*every),
            Ticks::Cron(cron) => {
                let at = DateTime::<Utc>::from_timestamp_millis(after)?;
                let next = cron.find_next_occurrence(&at, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The latest tick at or before `at`, if there is one.
    fn latest_at(&self, at: Millis) -> Option<Millis> {
        match &self.ticks {
            Ticks::Every(every) => Some(at - at.rem_euclid(*every)),
            Ticks::Cron(cron) => {
                let at = DateTime::<Utc>::from_timestamp_millis(at)?;
                let latest = cron.find_previous_occurrence(&at, true).ok()?;
                Some(latest.timestamp_millis())
            }
        }
    }

    /// The ticks to submit at `now`, oldest first, when the ticks up to
    /// `seen` have been looked at (`None`: none yet, as a runtime starts):
    /// with a catch-up window, each one after `seen` from `now - window` on;
    /// without, the latest at or before `now` alone, if it is after `seen`.
    fn due(&self, seen: Option<Millis>, now: Millis) -> Vec<Millis> {
        let Some(latest) = self.latest_at(now) else {
            return Vec::new();
        };
        let Some(window) = self.catch_up else {
            return if seen.is_none_or(|seen| latest > seen) {
                vec![latest]
            } else {
                Vec::new()
            };
        };
        // The ticks from the window's start on (it may be one), after `seen`.
        let from = now.saturating_sub(millis(window));
        let lower = seen.map_or(from, |seen| seen.saturating_add(1).max(from));
        let mut ticks = Vec::new();
        let mut tick = match self.latest_at(lower) {
            Some(t) if t == lower => Some(t),
            _ => self.next_after(lower),
        };
        while let Some(t) = tick.filter(|t| *t <= now) {
            ticks.push(t);
            if ticks.len() == MAX_TICKS_AT_ONCE {
                tracing::warn!(
                    ticks = MAX_TICKS_AT_ONCE,
                    "a catch-up found more ticks than it submits at once; the rest wait"
                );
                break;
            }
            tick = self.next_after(t);
        }
        ticks
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Schedule");
        match &self.ticks {
            Ticks::Cron(cron) => s.field("cron", &cron.as_str()),
            Ticks::Every(ms) => s.field("every_ms", ms),
        };
        s.field("catch_up", &self.catch_up).finish()
    }
}

/// A registered periodic job as [`Runtime::periodic_jobs`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct PeriodicInfo {
    /// Its name (its jobs' idempotency keys are `periodic:{name}:{tick}`).
    pub name: String,
    /// Its cron expression, for a cron schedule.
    pub cron: Option<String>,
    /// Its interval in milliseconds, for a fixed interval.
    pub every_ms: Option<i64>,
    /// Its catch-up window in milliseconds, if it has one.
    pub catch_up_ms: Option<i64>,
    /// The latest tick this runtime has submitted (or found submitted), in
    /// milliseconds since the Unix epoch; `None` before its first look.
    pub last_tick_ms: Option<i64>,
    /// The next tick, in milliseconds since the Unix epoch.
    pub next_tick_ms: Option<i64>,
}

/// Submits one tick's job: the state made, with its options.
type Submit = Arc<dyn Fn(Runtime, SubmitOptions) -> BoxFuture<'static, Result<JobId, RuntimeError>> + Send + Sync>;

/// A registered periodic job.
pub(crate) struct Periodic {
    name: String,
    schedule: Schedule,
    submit: Submit,
}

impl Periodic {
    /// `make`'s jobs, named `name`, at every tick of `schedule`.
    pub(crate) fn new<M, F>(name: String, schedule: Schedule, make: F) -> Self
    where
        M: StateMachine,
        F: Fn() -> M + Send + Sync + 'static,
    {
        let submit: Submit = Arc::new(move |rt: Runtime, options: SubmitOptions| {
            let state = make();
            Box::pin(async move { rt.submit_with(state, options).await })
        });
        Periodic { name, schedule, submit }
    }

    /// Submits the ticks due at `now` (see [`Schedule`]) after `seen`;
    /// returns the last tick looked at, to pass as `seen` next time.
    pub(crate) async fn submit_due(
        &self,
        rt: &Runtime,
        seen: Option<Millis>,
        now: Millis,
    ) -> Result<Option<Millis>, RuntimeError> {
        let due = self.schedule.due(seen, now);
        for &tick in &due {
            let options = SubmitOptions {
                run_at: Some(system_time(tick)),
                idempotency_key: Some(format!("periodic:{}:{tick}", self.name)),
                submitted_by: Some(format!("periodic:{}", self.name)),
                ..SubmitOptions::default()
            };
            let id = (self.submit)(rt.clone(), options).await?;
            tracing::debug!(periodic = %self.name, tick, job = %id, "submitted a periodic job");
        }
        // A catch-up cut short resumes after its last tick.
        if due.len() == MAX_TICKS_AT_ONCE {
            return Ok(due.last().copied());
        }
        Ok(self.schedule.latest_at(now).max(seen))
    }

    /// The next tick after `seen` (or after `now`, if none was seen).
    pub(crate) fn next_tick(&self, seen: Option<Millis>, now: Millis) -> Option<Millis> {
        self.schedule.next_after(seen.unwrap_or(now))
    }

    /// What [`Runtime::periodic_jobs`] reports of it.
    fn info(&self, seen: Option<Millis>, now: Millis) -> PeriodicInfo {
        let (cron, every_ms) = match &self.schedule.ticks {
            Ticks::Cron(cron) => (Some(cron.as_str().to_owned()), None),
            Ticks::Every(ms) => (None, Some(*ms)),
        };
        PeriodicInfo {
            name: self.name.clone(),
            cron,
            every_ms,
            catch_up_ms: self.schedule.catch_up.map(millis),
            last_tick_ms: seen,
            next_tick_ms: self.next_tick(seen, now),
        }
    }
}

/// A runtime's periodic jobs, with the last tick it looked at for each.
#[derive(Default)]
pub(crate) struct PeriodicJobs {
    jobs: Vec<Periodic>,
    seen: std::sync::Mutex<Vec<Option<Millis>>>,
}

impl PeriodicJobs {
    /// `jobs`, none of their ticks looked at yet.
    pub(crate) fn new(jobs: Vec<Periodic>) -> Self {
        let seen = std::sync::Mutex::new(vec![None; jobs.len()]);
        PeriodicJobs { jobs, seen }
    }

    /// Whether there are any.
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Option<Millis>>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Submits every job's ticks due at `now`.
    ///
    /// # Errors
    /// The first failed submission; the others are made regardless, and
    /// the failed ticks are tried again at the next call.
    pub(crate) async fn submit_due(&self, rt: &Runtime, now: Millis) -> Result<(), RuntimeError> {
        let mut first_error = None;
        for (i, job) in self.jobs.iter().enumerate() {
            let seen = self.seen()[i];
            match job.submit_due(rt, seen, now).await {
                Ok(looked) => self.seen()[i] = looked,
                Err(error) => {
                    tracing::warn!(periodic = %job.name, %error, "submitting a periodic job failed");
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Every job, as [`Runtime::periodic_jobs`] reports it.
    pub(crate) fn infos(&self, now: Millis) -> Vec<PeriodicInfo> {
        let seen = self.seen();
        self.jobs
            .iter()
            .zip(seen.iter())
            .map(|(job, seen)| job.info(*seen, now))
            .collect()
    }

    /// The earliest next tick of any job.
    fn next_tick(&self, now: Millis) -> Option<Millis> {
        let seen = self.seen();
        self.jobs
            .iter()
            .zip(seen.iter())
            .filter_map(|(job, seen)| job.next_tick(*seen, now))
            .min()
    }
}

/// Submits the periodic jobs' ticks as they come until the runtime stops;
/// after a failed submission, tries again within a poll interval.
pub(crate) async fn periodic_loop(rt: Runtime) {
    let inner = Arc::clone(&rt.inner);
    loop {
        let now = inner.clock.now();
        let failed = inner.periodic.submit_due(&rt, now).await.is_err();
        let retry = failed.then(|| now.saturating_add(millis(inner.policies.poll_interval)));
        let Some(wake) = [inner.periodic.next_tick(now), retry].into_iter().flatten().min() else {
            return;
        };
        tokio::select! {
            () = inner.stopping.raised() => return,
            () = inner.clock.sleep_until(wake) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    #[test]
    fn interval_ticks_count_from_the_epoch() {
        let s = Schedule::every(Duration::from_secs(60)).unwrap();
        assert_eq!(s.latest_at(5 * MIN + 10), Some(5 * MIN));
        assert_eq!(s.next_after(5 * MIN), Some(6 * MIN));
        assert_eq!(
            s.due(None, 5 * MIN + 10),
            vec![5 * MIN],
            "as it starts: the latest tick"
        );
        assert_eq!(s.due(Some(5 * MIN), 5 * MIN + 10), Vec::<Millis>::new(), "seen already");
        assert_eq!(
            s.due(Some(5 * MIN), 9 * MIN),
            vec![9 * MIN],
            "missed ticks: only the latest"
        );
        let caught = s.catch_up(Duration::from_secs(180));
        assert_eq!(caught.due(None, 9 * MIN + 1), vec![7 * MIN, 8 * MIN, 9 * MIN]);
        assert_eq!(
            caught.due(Some(5 * MIN), 9 * MIN),
            vec![6 * MIN, 7 * MIN, 8 * MIN, 9 * MIN]
        );
        assert!(Schedule::every(Duration::from_micros(10)).is_err());
    }

    #[test]
    fn cron_ticks_have_seconds() {
        let s = Schedule::cron("*/20 * * * * *").unwrap();
        assert_eq!(s.latest_at(50_000), Some(40_000));
        assert_eq!(s.next_after(40_000), Some(60_000));
        let five = Schedule::cron("*/5 * * * *").unwrap();
        assert_eq!(five.latest_at(7 * MIN), Some(5 * MIN), "five fields: second 0");
        let err = Schedule::cron("not a cron").unwrap_err();
        assert!(err.to_string().contains("not a cron"), "{err}");
    }
}

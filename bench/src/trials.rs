//! Repeated trials of one throughput figure, and their median.
//!
//! A 10k-job burn-down on memory lasts about 20 ms and one on Postgres a
//! third of a second: one page-fault storm or descheduled thread moves such
//! a figure by a third. Each side's throughput figure is therefore the
//! median of up to [`MAX`] trials, as many as start within [`TIME`] of the
//! first, the same rule for RuneKernel and apalis: runs that take longer
//! (apalis on SQLite, any 1M-job run) are measured once.

use std::time::{Duration, Instant};

/// The most trials of one figure.
pub const MAX: usize = 3;

/// No further trial starts once this long has passed since the first began.
pub const TIME: Duration = Duration::from_secs(5);

/// The median of the figures `trial` returns, run as the rule above allows;
/// `None` if the first trial gives no figure. A later trial that gives none
/// ends the series with the figures so far.
pub async fn median(mut trial: impl AsyncFnMut() -> Option<f64>) -> Option<f64> {
    let started = Instant::now();
    let mut figures = Vec::with_capacity(MAX);
    while figures.len() < MAX && (figures.is_empty() || started.elapsed() < TIME) {
        match trial().await {
            Some(figure) => figures.push(figure),
            None => break,
        }
    }
    middle(figures)
}

/// The middle figure (the lower middle of an even count).
fn middle(mut figures: Vec<f64>) -> Option<f64> {
    figures.sort_by(f64::total_cmp);
    let mid = figures.len().checked_sub(1)? / 2;
    figures.get(mid).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middle_of_odd_and_even_counts() {
        assert_eq!(middle(vec![]), None);
        assert_eq!(middle(vec![4.0]), Some(4.0));
        assert_eq!(middle(vec![9.0, 1.0]), Some(1.0));
        assert_eq!(middle(vec![9.0, 1.0, 5.0]), Some(5.0));
    }

    #[tokio::test]
    async fn quick_trials_run_three_times_and_give_the_median() {
        let mut next = [30.0, 10.0, 20.0, 40.0].into_iter();
        let mut runs = 0;
        let figure = median(async || {
            runs += 1;
            next.next()
        })
        .await;
        assert_eq!((figure, runs), (Some(20.0), 3));
    }

    #[tokio::test]
    async fn a_trial_that_gives_nothing_ends_the_series() {
        let mut next = [Some(7.0), None, Some(1.0)].into_iter();
        let figure = median(async || next.next().flatten()).await;
        assert_eq!(figure, Some(7.0));
    }
}

//! Changes to every job a filter matches, a page at a time:
//! [`Runtime::retry_matching`] and [`Runtime::cancel_matching`]. Each call
//! changes at most one page of jobs, one job at a time, so a filter that
//! matches a million jobs holds no long transaction and no caller waits on
//! all of them at once: the caller goes on with the page's `next` cursor.

use crate::storage::{CancelOutcome, JobFilter, JobId};

use super::{Result, Runtime, RuntimeError};

/// What a bulk change did to one page of the jobs a filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkPage {
    /// How many jobs of the page it changed.
    pub touched: u64,
    /// Pass as `after` to go on with the next page; `None` after the last.
    pub next: Option<JobId>,
}

impl Runtime {
    /// Retries, as [`retry`](Self::retry) does, the failed and cancelled
    /// jobs among one page of those `filter` matches: up to `limit` jobs
    /// (at least one) after `after`, oldest first. Jobs of the page that
    /// cannot be retried, or that changed meanwhile, are left as they are.
    ///
    /// ```
    /// use runekernel::{job::Job, JobFilter, JobState, Runtime};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), runekernel::RuntimeError> {
    /// let rt = Runtime::builder().deterministic(1).build().await?;
    /// for _ in 0..3 {
    ///     let id = rt.submit_job(Job::new()).await?;
    ///     rt.cancel(id).await?;
    /// }
    /// let cancelled = JobFilter { status: Some(JobState::Cancelled), ..JobFilter::default() };
    /// let (mut retried, mut after) = (0, None);
    /// loop {
    ///     let page = rt.retry_matching(&cancelled, after, 2).await?;
    ///     retried += page.touched;
    ///     match page.next {
    ///         Some(next) => after = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(retried, 3);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Storage errors; the jobs retried before one are retried.
    pub async fn retry_matching(&self, filter: &JobFilter, after: Option<JobId>, limit: usize) -> Result<BulkPage> {
        self.retry_matching_by(filter, after, limit, &self.inner.worker_id)
            .await
    }

    /// [`retry_matching`](Self::retry_matching), recording `who` asked.
    pub(crate) async fn retry_matching_by(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        who: &str,
    ) -> Result<BulkPage> {
        let page = self.inner.storage.list(filter, after, limit.max(1)).await?;
        let mut touched = 0;
        for job in &page.jobs {
            match self.retry_by(job.id, who).await {
                Ok(_) => touched += 1,
                Err(RuntimeError::NotRetryable { .. } | RuntimeError::NotFound(_)) => {}
                Err(RuntimeError::Storage(error)) if error.is_conflict() => {}
                Err(other) => return Err(other),
            }
        }
        Ok(BulkPage {
            touched,
            next: page.next,
        })
    }

    /// Cancels, as [`cancel`](Self::cancel) does, the unfinished jobs among
    /// one page of those `filter` matches: up to `limit` jobs (at least
    /// one) after `after`, oldest first. A running job counts as touched
    /// once its cancellation is requested.
    ///
    /// # Errors
    /// Storage errors; the jobs cancelled before one are cancelled.
    pub async fn cancel_matching(&self, filter: &JobFilter, after: Option<JobId>, limit: usize) -> Result<BulkPage> {
        self.cancel_matching_by(filter, after, limit, None).await
    }

    /// [`cancel_matching`](Self::cancel_matching), recording `who` asked
    /// in the history of each job it cancels at once.
    pub(crate) async fn cancel_matching_by(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        who: Option<&str>,
    ) -> Result<BulkPage> {
        let page = self.inner.storage.list(filter, after, limit.max(1)).await?;
        let mut touched = 0;
        for job in page.jobs.iter().filter(|job| !job.status.is_finished()) {
            match self.cancel_by(job.id, who).await {
                Ok(CancelOutcome::Cancelled(_) | CancelOutcome::Requested) => touched += 1,
                Ok(CancelOutcome::AlreadyFinished(_)) | Err(RuntimeError::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(BulkPage {
            touched,
            next: page.next,
        })
    }
}

//! Claiming: asking storage for ready jobs to run here, and handing back
//! the claimed jobs that will not run. The producer claims for the worker
//! slots it holds; an executor that finishes a job claims its next one
//! itself when claims are cheap (see `pool.rs`).

use crate::storage::JobRecord;

use super::Inner;

/// Hands claimed jobs that will not run here back to the queue.
pub(crate) async fn hand_back(rt: &Inner, jobs: impl IntoIterator<Item = JobRecord>) {
    for job in jobs {
        if let Some(lease) = &job.lease {
            if let Err(error) = rt.storage.release(job.id, lease.token, rt.clock.now()).await {
                tracing::warn!(job = %job.id, %error, "could not hand back a claimed job; its lease will expire");
            }
        }
    }
}

/// Claims up to `limit` jobs of `queue` to run now. A failed claim is logged
/// and finds none; jobs claimed while the runtime stops are handed straight
/// back.
pub(crate) async fn claim_jobs(rt: &Inner, queue: &str, limit: usize) -> Vec<JobRecord> {
    let mut jobs = match rt.storage.claim(rt.claim_request(queue, limit)).await {
        Ok(jobs) => jobs,
        Err(error) => {
            tracing::error!(queue, %error, "claiming jobs failed; retrying");
            return Vec::new();
        }
    };
    if rt.stopping.is_raised() {
        hand_back(rt, jobs).await;
        return Vec::new();
    }
    // A claim answered after its leases ran out (the process was frozen,
    // or the answer was that slow) starts none of its jobs: their commits
    // would be refused, and another worker may run them already.
    // One clock reading for the claim: its leases all run out together.
    let now = rt.clock.now();
    jobs.retain(|job| {
        let live = job.lease.as_ref().is_some_and(|lease| lease.expires_at > now);
        if !live {
            tracing::warn!(job = %job.id, "the lease ran out before the step could start; leaving the job");
        }
        live
    });
    jobs
}

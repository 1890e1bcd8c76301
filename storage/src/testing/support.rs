//! Helpers shared by the checks.

use serde_json::json;

use crate::model::{JobRecord, NewJob, DEFAULT_QUEUE};
use crate::JobId;
use crate::{Commit, Outcome, StateChange};

/// A pending job of `machine` in state `start`, due at 0, priority 0, with
/// a payload holding `n`.
pub fn new_job(machine: &str, n: u64) -> NewJob {
    NewJob {
        id: JobId::new(),
        machine: machine.to_owned(),
        queue: DEFAULT_QUEUE.to_owned(),
        fingerprint: 7,
        state: "start".to_owned(),
        payload: json!({ "n": n }),
        priority: 0,
        run_at: 0,
        max_attempts: 3,
        timeout_ms: None,
        idempotency_key: None,
        created_at: 0,
        submitted_by: None,
    }
}

/// The commit of `outcome` by the worker holding claimed `job`, at `now`.
///
/// # Panics
/// If `job` has no lease.
pub fn held(job: &JobRecord, now: i64, outcome: Outcome) -> Commit {
    let lease = job.lease.as_ref().expect("a claimed job");
    Commit::held(job, lease.token, lease.owner.clone(), now, outcome)
}

/// A new state `name` with payload `payload` and `job`'s fingerprint.
pub fn to(job: &JobRecord, name: &str, payload: serde_json::Value) -> StateChange {
    StateChange {
        state: name.to_owned(),
        payload,
        fingerprint: job.fingerprint,
    }
}

/// The commit that moves a claimed job on to a `next` state and keeps it
/// running under its lease until `lease_until`.
pub fn move_on(job: &JobRecord, now: i64, lease_until: i64) -> Commit {
    let to = to(job, "next", json!(1));
    held(job, now, Outcome::Continued { to, lease_until })
}

/// The commit that moves a claimed job to a terminal `done` state.
pub fn finish(job: &JobRecord, now: i64) -> Commit {
    let to = to(job, "done", json!(null));
    held(job, now, Outcome::Completed { to })
}

/// A claim request for `machines` in the default queue at `now` with 30 s
/// leases.
pub fn claim_request(machines: &[&str], limit: usize, now: i64) -> crate::ClaimRequest {
    claim_from(DEFAULT_QUEUE, machines, limit, now)
}

/// A claim request for `machines` in `queue` at `now` with 30 s leases.
pub fn claim_from(queue: &str, machines: &[&str], limit: usize, now: i64) -> crate::ClaimRequest {
    crate::ClaimRequest {
        worker: "worker-1".to_owned(),
        machines: machines.iter().map(|m| (*m).to_owned()).collect(),
        queue: queue.to_owned(),
        limit,
        now,
        lease_ms: 30_000,
    }
}

//! Helpers shared by the checks.

use serde_json::json;

use crate::model::{Commit, JobRecord, NewJob};
use crate::{JobId, JobState};

/// A pending job of `machine` in state `start`, due at 0, priority 0, with
/// a payload holding `n`.
pub fn new_job(machine: &str, n: u64) -> NewJob {
    NewJob {
        id: JobId::new(),
        machine: machine.to_owned(),
        fingerprint: 7,
        state: "start".to_owned(),
        payload: json!({ "n": n }),
        priority: 0,
        run_at: 0,
        max_attempts: 3,
        timeout_ms: None,
        idempotency_key: None,
        created_at: 0,
    }
}

/// The commit that moves a claimed job on to a `next` state and keeps it
/// running under its lease until `lease_until`.
pub fn move_on(job: &JobRecord, now: i64, lease_until: i64) -> Commit {
    Commit {
        change: Some(crate::StateChange {
            state: "next".to_owned(),
            payload: json!(1),
            fingerprint: job.fingerprint,
        }),
        status: JobState::Running,
        lease_until: Some(lease_until),
        ..finish(job, now)
    }
}

/// The commit that moves a claimed job to a terminal `done` state.
pub fn finish(job: &JobRecord, now: i64) -> Commit {
    Commit {
        id: job.id,
        expected_version: job.version,
        lease: job.lease.as_ref().map(|l| l.token),
        change: Some(crate::StateChange {
            state: "done".to_owned(),
            payload: json!(null),
            fingerprint: job.fingerprint,
        }),
        status: JobState::Completed,
        run_at: job.run_at,
        attempts: job.attempts,
        lease_until: None,
        error: None,
        now,
        worker: job.lease.as_ref().map(|l| l.owner.clone()),
    }
}

/// A claim request for `machines` at `now` with 30 s leases.
pub fn claim_request(machines: &[&str], limit: usize, now: i64) -> crate::ClaimRequest {
    crate::ClaimRequest {
        worker: "worker-1".to_owned(),
        machines: machines.iter().map(|m| (*m).to_owned()).collect(),
        limit,
        now,
        lease_ms: 30_000,
    }
}

//! A commit as the SQL backends write it: the values of its
//! [`Outcome`](crate::Outcome) as bound parameters ([`CommitValues`]), and
//! the one `SET` list that writes only the columns an outcome changes, which
//! SQLite and Postgres both run. Postgres also checks the version and lease
//! ([`fence`]) and builds the history entry from the row as it was
//! ([`history_select`]) in the same statement, so it reads nothing first;
//! SQLite, whose single writer reads its own file, checks the row in Rust
//! first.

use crate::commit::{AttemptsAfter, Commit};
use crate::model::Millis;
use crate::{JobId, JobState};

/// A commit's values, one per parameter of [`fence`], [`set`] and
/// [`history_select`], owned (the JSON already written out), so that they
/// can go to a writer thread and be bound there.
pub(crate) struct CommitValues {
    /// The job.
    pub id: JobId,
    /// The version the commit expects.
    pub version: i64,
    /// The lease it is made under, if any.
    pub lease_token: Option<i64>,
    /// Its time.
    pub now: Millis,
    /// Who made it.
    pub worker: Option<String>,
    /// The new state, or `None` to keep the stored one.
    pub state: Option<String>,
    /// The new payload as JSON text, with `state`.
    pub payload: Option<String>,
    /// The new fingerprint, with `state`.
    pub fingerprint: Option<i64>,
    /// The lifecycle state after.
    pub status: JobState,
    /// The new run time, or `None` to keep the stored one.
    pub run_at: Option<i64>,
    /// [`AttemptsAfter`] as the text the `CASE` of [`set`] reads.
    pub attempts: &'static str,
    /// The kept lease's new expiry; `None` clears the lease.
    pub lease_until: Option<i64>,
    /// Whether a cancellation request may stand (the job has not finished).
    pub keeps_cancel: bool,
    /// The error recorded, in history and as the last error.
    pub error: Option<String>,
}

impl CommitValues {
    pub(crate) fn of(commit: &Commit) -> Self {
        let outcome = &commit.outcome;
        let change = outcome.change();
        CommitValues {
            id: commit.id,
            version: i64::try_from(commit.expected_version).unwrap_or(i64::MAX),
            lease_token: commit.lease.map(|l| l.0.cast_signed()),
            now: commit.now,
            worker: commit.worker.clone(),
            state: change.map(|c| c.state.clone()),
            payload: change.map(|c| c.payload.to_string()),
            fingerprint: change.map(|c| c.fingerprint.cast_signed()),
            status: outcome.status(),
            run_at: outcome.run_at(),
            attempts: match outcome.attempts() {
                AttemptsAfter::Kept => "kept",
                AttemptsAfter::Reset => "reset",
                AttemptsAfter::FirstUnderWay => "first",
                AttemptsAfter::GivenBack => "given_back",
            },
            lease_until: outcome.lease_until(),
            keeps_cancel: !outcome.status().is_finished(),
            error: outcome.error().map(str::to_owned),
        }
    }
}

#[cfg(feature = "postgres")]
/// The columns of a history entry, in the order [`history_select`] gives
/// them.
pub(crate) const HISTORY_COLUMNS: &str =
    "job_id, seq, from_state, to_state, status, error, at, attempt, worker, payload";

/// The `SET` list of a commit's update. `value(name)` is the SQL of the
/// commit's value `name` (a field of [`OutcomeValues`], or `now`), and
/// `row` the prefix of the job row's columns (`"j."`, or `""`). Bumps the
/// version; keeps the lease (owner, token) only for an outcome that sets
/// its expiry.
pub(crate) fn set(value: impl Fn(&str) -> String, row: &str) -> String {
    let v = value;
    format!(
        "state = COALESCE({state}, {row}state), payload = COALESCE({payload}, {row}payload), \
         fingerprint = COALESCE({fingerprint}, {row}fingerprint), status = {status}, \
         run_at = COALESCE({run_at}, {row}run_at), \
         attempts = CASE {attempts} WHEN 'reset' THEN 0 WHEN 'first' THEN 1 WHEN 'given_back' THEN CASE WHEN {row}attempts > 0 \
           THEN {row}attempts - 1 ELSE 0 END ELSE {row}attempts END, \
         lease_owner = CASE WHEN {lease_until} IS NULL THEN NULL ELSE {row}lease_owner END, \
         lease_token = CASE WHEN {lease_until} IS NULL THEN NULL ELSE {row}lease_token END, \
         lease_expires_at = {lease_until}, version = {row}version + 1, \
         cancel_requested = {row}cancel_requested AND {keeps_cancel}, \
         cancel_reason = CASE WHEN {keeps_cancel} THEN {row}cancel_reason END, updated_at = {now}, \
         last_error = COALESCE({error}, {row}last_error)",
        state = v("state"),
        payload = v("payload"),
        fingerprint = v("fingerprint"),
        status = v("status"),
        run_at = v("run_at"),
        attempts = v("attempts"),
        lease_until = v("lease_until"),
        keeps_cancel = v("keeps_cancel"),
        now = v("now"),
        error = v("error"),
    )
}

#[cfg(feature = "postgres")]
/// The condition that the job row (prefixed `row`) still has the commit's
/// `version` and, for a commit under a lease (`lease_token` not null), that
/// unexpired lease at `now`; for one without, that the job is not running.
/// The values are named as [`set`]'s are.
pub(crate) fn fence(value: impl Fn(&str) -> String, row: &str) -> String {
    let (version, token, now) = (value("version"), value("lease_token"), value("now"));
    format!(
        "{row}version = {version} AND CASE WHEN {token} IS NULL THEN {row}status <> 'running' \
         ELSE {row}status = 'running' AND {row}lease_token = {token} AND {row}lease_expires_at > {now} END"
    )
}

#[cfg(feature = "postgres")]
/// The history entry's columns, named as [`HISTORY_COLUMNS`], from the job
/// row as it was *before* the commit (its state, attempts and version) and
/// the commit's values, named as [`set`]'s `value` and `row` name them.
pub(crate) fn history_select(value: impl Fn(&str) -> String, row: &str) -> String {
    let v = value;
    format!(
        "{row}id AS job_id, {row}version + 1 AS seq, {row}state AS from_state, \
         COALESCE({state}, {row}state) AS to_state, {status} AS status, {error} AS error, {now} AS at, \
         {row}attempts AS attempt, {worker} AS worker, COALESCE({payload}, {row}payload) AS payload",
        state = v("state"),
        status = v("status"),
        error = v("error"),
        now = v("now"),
        worker = v("worker"),
        payload = v("payload"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_asked_for_by_name() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let record = |name: &str| {
            asked.borrow_mut().insert(name.to_owned());
            format!(":{name}")
        };
        let sql = set(record, "j.");
        assert!(!sql.contains('{'), "{sql}");
        let asked = asked.into_inner();
        let names: Vec<&str> = asked.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "attempts",
                "error",
                "fingerprint",
                "keeps_cancel",
                "lease_until",
                "now",
                "payload",
                "run_at",
                "state",
                "status"
            ]
        );
    }
}

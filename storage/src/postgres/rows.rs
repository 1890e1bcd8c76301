//! Postgres rows to records and records to column arrays (for `unnest`
//! batch writes).

use crate::sqlx;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row};

use crate::commit::Commit;
use crate::error::StorageError;
use crate::model::{HistoryEntry, JobRecord, Lease, LeaseToken, NewJob};
use crate::outcome_sql::CommitValues;
use crate::{JobId, JobState};

/// The job columns, in the order [`read_job`] reads them by name.
pub(super) const JOB_COLUMNS: &str = "id, machine, fingerprint, state, payload, status, priority, run_at, attempts, \
     max_attempts, timeout_ms, lease_owner, lease_token, lease_expires_at, version, idempotency_key, \
     cancel_requested, created_at, updated_at, last_error, queue, cancel_reason";

pub(super) fn backend(error: sqlx::Error) -> StorageError {
    StorageError::backend(error)
}

/// `value` as a `text` column can hold it: Postgres refuses the NUL
/// character in text, so each is written as the two characters `\0`. Used
/// for the free-form columns (errors, worker names), where one step's
/// message must not fail the write of a whole batch.
pub(super) fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        std::borrow::Cow::Owned(value.replace('\0', "\\0"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// [`text`] of an optional value, owned.
fn text_owned(value: Option<&str>) -> Option<String> {
    value.map(|v| text(v).into_owned())
}

/// A count in an `int4` column. [`NewJob::check`] bounds what a user may
/// set; a counter the runtime keeps under that bound never saturates.
fn int4(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A count or duration in an `int8` column, bounded as [`int4`]'s are.
fn int8(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored count read back: negative only in a row written by something
/// else, which is reported as corrupt rather than wrapped.
fn unsigned<S, U: TryFrom<S>>(id: JobId, column: &str, value: S) -> Result<U, StorageError>
where
    S: Copy + std::fmt::Display,
{
    U::try_from(value).map_err(|_| StorageError::Corrupt {
        id,
        message: format!("`{column}` holds {value}, which is not a count"),
    })
}

pub(super) fn read_job(row: &PgRow) -> Result<JobRecord, StorageError> {
    let id = JobId::from_uuid(row.try_get("id").map_err(backend)?);
    let status: String = row.try_get("status").map_err(backend)?;
    let status = status.parse::<JobState>().map_err(|e| StorageError::Corrupt {
        id,
        message: e.to_string(),
    })?;
    let owner: Option<String> = row.try_get("lease_owner").map_err(backend)?;
    let token: Option<i64> = row.try_get("lease_token").map_err(backend)?;
    let expires_at: Option<i64> = row.try_get("lease_expires_at").map_err(backend)?;
    let lease = match (owner, token, expires_at) {
        (Some(owner), Some(token), Some(expires_at)) => Some(Lease {
            owner,
            token: LeaseToken(token.cast_unsigned()),
            expires_at,
        }),
        _ => None,
    };
    let get_i32 = |name: &str| row.try_get::<i32, _>(name).map_err(backend);
    let get_i64 = |name: &str| row.try_get::<i64, _>(name).map_err(backend);
    let count = |name: &str| unsigned(id, name, get_i32(name)?);
    Ok(JobRecord {
        id,
        machine: row.try_get("machine").map_err(backend)?,
        queue: row.try_get("queue").map_err(backend)?,
        fingerprint: get_i64("fingerprint")?.cast_unsigned(),
        state: row.try_get("state").map_err(backend)?,
        payload: row.try_get("payload").map_err(|e| StorageError::Corrupt {
            id,
            message: format!("the stored payload cannot be read: {e}"),
        })?,
        status,
        priority: get_i32("priority")?,
        run_at: get_i64("run_at")?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        timeout_ms: row
            .try_get::<Option<i64>, _>("timeout_ms")
            .map_err(backend)?
            .map(|t| unsigned(id, "timeout_ms", t))
            .transpose()?,
        lease,
        version: unsigned(id, "version", get_i64("version")?)?,
        idempotency_key: row.try_get("idempotency_key").map_err(backend)?,
        cancel_requested: row.try_get("cancel_requested").map_err(backend)?,
        cancel_reason: row.try_get("cancel_reason").map_err(backend)?,
        created_at: get_i64("created_at")?,
        updated_at: get_i64("updated_at")?,
        last_error: row.try_get("last_error").map_err(backend)?,
    })
}

pub(super) fn read_history(id: JobId, row: &PgRow) -> Result<HistoryEntry, StorageError> {
    let status: String = row.try_get("status").map_err(backend)?;
    Ok(HistoryEntry {
        seq: unsigned(id, "seq", row.try_get::<i64, _>("seq").map_err(backend)?)?,
        from: row.try_get("from_state").map_err(backend)?,
        to: row.try_get("to_state").map_err(backend)?,
        status: status
            .parse()
            .map_err(|e: crate::ParseJobStateError| StorageError::Corrupt {
                id,
                message: e.to_string(),
            })?,
        error: row.try_get("error").map_err(backend)?,
        at: row.try_get("at").map_err(backend)?,
        attempt: unsigned(id, "attempt", row.try_get::<i32, _>("attempt").map_err(backend)?)?,
        worker: row.try_get("worker").map_err(backend)?,
        payload: row.try_get("payload").map_err(backend)?,
    })
}

/// A statement being bound.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// `$first::type[], ..` for `types`, numbered from `first`.
pub(super) fn array_params(first: usize, types: &[&str]) -> String {
    let params: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect();
    params.join(", ")
}

/// New jobs as one array per column, for `INSERT .. SELECT FROM unnest(..)`,
/// borrowing their strings.
#[derive(Default)]
pub(super) struct NewJobColumns<'a> {
    id: Vec<uuid::Uuid>,
    machine: Vec<&'a str>,
    queue: Vec<&'a str>,
    fingerprint: Vec<i64>,
    state: Vec<&'a str>,
    payload: Vec<String>,
    priority: Vec<i32>,
    run_at: Vec<i64>,
    max_attempts: Vec<i32>,
    timeout_ms: Vec<Option<i64>>,
    idempotency_key: Vec<Option<&'a str>>,
    created_at: Vec<i64>,
    submitted_by: Vec<Option<String>>,
}

impl<'a> NewJobColumns<'a> {
    /// The columns of `jobs`.
    pub(super) fn of(jobs: &[&'a NewJob]) -> Self {
        NewJobColumns {
            id: jobs.iter().map(|j| *j.id.as_uuid()).collect(),
            machine: jobs.iter().map(|j| j.machine.as_str()).collect(),
            queue: jobs.iter().map(|j| j.queue.as_str()).collect(),
            fingerprint: jobs.iter().map(|j| j.fingerprint.cast_signed()).collect(),
            state: jobs.iter().map(|j| j.state.as_str()).collect(),
            payload: jobs.iter().map(|j| j.payload.to_string()).collect(),
            priority: jobs.iter().map(|j| j.priority).collect(),
            run_at: jobs.iter().map(|j| j.run_at).collect(),
            max_attempts: jobs.iter().map(|j| int4(j.max_attempts)).collect(),
            timeout_ms: jobs.iter().map(|j| j.timeout_ms.map(int8)).collect(),
            idempotency_key: jobs.iter().map(|j| j.idempotency_key.as_deref()).collect(),
            created_at: jobs.iter().map(|j| j.created_at).collect(),
            submitted_by: jobs.iter().map(|j| text_owned(j.submitted_by.as_deref())).collect(),
        }
    }

    /// The column names, in the order [`NewJobColumns::bind`] binds them.
    pub(super) const NAMES: &'static str = "id, machine, queue, fingerprint, state, payload, priority, run_at, \
         max_attempts, timeout_ms, idempotency_key, created_at";
    /// Their array types.
    pub(super) const TYPES: [&'static str; 12] = [
        "uuid", "text", "text", "int8", "text", "text", "int4", "int8", "int4", "int8", "text", "int8",
    ];

    /// Whether any of the jobs names who submitted it.
    pub(super) fn name_submitters(&self) -> bool {
        self.submitted_by.iter().any(Option::is_some)
    }

    /// Binds the arrays as the next 12 parameters, and with `submitters`,
    /// who submitted each job as the 13th.
    pub(super) fn bind<'q>(&'q self, query: PgQuery<'q>, submitters: bool) -> PgQuery<'q> {
        let query = query
            .bind(&self.id)
            .bind(&self.machine)
            .bind(&self.queue)
            .bind(&self.fingerprint)
            .bind(&self.state)
            .bind(&self.payload)
            .bind(&self.priority)
            .bind(&self.run_at)
            .bind(&self.max_attempts)
            .bind(&self.timeout_ms)
            .bind(&self.idempotency_key)
            .bind(&self.created_at);
        if submitters {
            query.bind(&self.submitted_by)
        } else {
            query
        }
    }
}

/// Job records as one array per column, for `UPDATE .. FROM unnest(..)`.
#[derive(Default)]
pub(super) struct JobColumns {
    pub id: Vec<uuid::Uuid>,
    pub fingerprint: Vec<i64>,
    pub state: Vec<String>,
    pub payload: Vec<String>,
    pub status: Vec<String>,
    pub run_at: Vec<i64>,
    pub attempts: Vec<i32>,
    pub lease_owner: Vec<Option<String>>,
    pub lease_token: Vec<Option<i64>>,
    pub lease_expires_at: Vec<Option<i64>>,
    pub version: Vec<i64>,
    pub cancel_requested: Vec<bool>,
    pub updated_at: Vec<i64>,
    pub last_error: Vec<Option<String>>,
    pub cancel_reason: Vec<Option<String>>,
}

impl JobColumns {
    pub(super) fn push(&mut self, r: &JobRecord) {
        self.id.push(*r.id.as_uuid());
        self.fingerprint.push(r.fingerprint.cast_signed());
        self.state.push(r.state.clone());
        self.payload.push(r.payload.to_string());
        self.status.push(r.status.as_str().to_owned());
        self.run_at.push(r.run_at);
        self.attempts.push(int4(r.attempts));
        self.lease_owner
            .push(text_owned(r.lease.as_ref().map(|l| l.owner.as_str())));
        self.lease_token.push(r.lease.as_ref().map(|l| l.token.0.cast_signed()));
        self.lease_expires_at.push(r.lease.as_ref().map(|l| l.expires_at));
        self.version.push(int8(r.version));
        self.cancel_requested.push(r.cancel_requested);
        self.updated_at.push(r.updated_at);
        self.last_error.push(text_owned(r.last_error.as_deref()));
        self.cancel_reason.push(text_owned(r.cancel_reason.as_deref()));
    }

    /// The column names, in the order [`JobColumns::bind`] binds them.
    pub(super) const NAMES: &str = "id, fingerprint, state, payload, status, run_at, attempts, lease_owner, \
         lease_token, lease_expires_at, version, cancel_requested, updated_at, last_error, cancel_reason";
    /// Their array types.
    pub(super) const TYPES: [&'static str; 15] = [
        "uuid", "int8", "text", "text", "text", "int8", "int4", "text", "int8", "int8", "int8", "bool", "int8", "text",
        "text",
    ];
    /// `SET` assignments from a row `u` of these columns.
    pub(super) const SET: &str = "fingerprint = u.fingerprint, state = u.state, payload = u.payload::json, \
         status = u.status, run_at = u.run_at, attempts = u.attempts, lease_owner = u.lease_owner, \
         lease_token = u.lease_token, lease_expires_at = u.lease_expires_at, version = u.version, \
         cancel_requested = u.cancel_requested, updated_at = u.updated_at, last_error = u.last_error, \
         cancel_reason = u.cancel_reason";

    /// Binds the arrays as the next 14 parameters.
    pub(super) fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.id)
            .bind(&self.fingerprint)
            .bind(&self.state)
            .bind(&self.payload)
            .bind(&self.status)
            .bind(&self.run_at)
            .bind(&self.attempts)
            .bind(&self.lease_owner)
            .bind(&self.lease_token)
            .bind(&self.lease_expires_at)
            .bind(&self.version)
            .bind(&self.cancel_requested)
            .bind(&self.updated_at)
            .bind(&self.last_error)
            .bind(&self.cancel_reason)
    }
}

/// Commits as one array per column, for the one statement that writes a
/// batch of them ([`COMMIT_JOBS`](super::statements::COMMIT_JOBS)).
#[derive(Default)]
pub(super) struct CommitColumns {
    id: Vec<uuid::Uuid>,
    version: Vec<i64>,
    lease_token: Vec<Option<i64>>,
    state: Vec<Option<String>>,
    payload: Vec<Option<String>>,
    fingerprint: Vec<Option<i64>>,
    status: Vec<&'static str>,
    run_at: Vec<Option<i64>>,
    attempts: Vec<&'static str>,
    lease_until: Vec<Option<i64>>,
    keeps_cancel: Vec<bool>,
    now: Vec<i64>,
    error: Vec<Option<String>>,
    worker: Vec<Option<String>>,
}

impl CommitColumns {
    /// The columns of `commits`.
    pub(super) fn of(commits: &[&Commit]) -> Self {
        let mut c = CommitColumns::default();
        for commit in commits {
            let v = CommitValues::of(commit);
            c.id.push(*v.id.as_uuid());
            c.version.push(v.version);
            c.lease_token.push(v.lease_token);
            c.state.push(v.state);
            c.payload.push(v.payload);
            c.fingerprint.push(v.fingerprint);
            c.status.push(v.status.as_str());
            c.run_at.push(v.run_at);
            c.attempts.push(v.attempts);
            c.lease_until.push(v.lease_until);
            c.keeps_cancel.push(v.keeps_cancel);
            c.now.push(v.now);
            c.error.push(text_owned(v.error.as_deref()));
            c.worker.push(text_owned(v.worker.as_deref()));
        }
        c
    }

    /// The column names, in the order [`CommitColumns::bind`] binds them.
    pub(super) const NAMES: &'static str = "id, version, lease_token, state, payload, fingerprint, status, run_at, \
         attempts, lease_until, keeps_cancel, now, error, worker";
    /// Their array types.
    pub(super) const TYPES: [&'static str; 14] = [
        "uuid", "int8", "int8", "text", "text", "int8", "text", "int8", "text", "int8", "bool", "int8", "text", "text",
    ];

    /// The SQL of the value `name` of a row `u` of these columns.
    pub(super) fn value(name: &str) -> String {
        match name {
            "payload" => "u.payload::json".to_owned(),
            name => format!("u.{name}"),
        }
    }

    /// Binds the arrays as the next 14 parameters.
    pub(super) fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.id)
            .bind(&self.version)
            .bind(&self.lease_token)
            .bind(&self.state)
            .bind(&self.payload)
            .bind(&self.fingerprint)
            .bind(&self.status)
            .bind(&self.run_at)
            .bind(&self.attempts)
            .bind(&self.lease_until)
            .bind(&self.keeps_cancel)
            .bind(&self.now)
            .bind(&self.error)
            .bind(&self.worker)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_escapes_nul_and_leaves_the_rest() {
        assert_eq!(super::text("plain"), "plain");
        assert!(matches!(super::text("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(super::text("a\0b\0"), "a\\0b\\0");
    }
}

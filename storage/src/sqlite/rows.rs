//! Reading and writing rows: a [`JobRecord`] or [`HistoryEntry`] to SQL
//! parameters and back. Every statement is prepared once per connection
//! (`prepare_cached`).

use std::fmt::Write as _;
use std::sync::LazyLock;

use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Row, Statement};
use serde_json::Value;

use crate::error::StorageError;
use crate::model::{HistoryEntry, JobRecord, Lease, LeaseToken, NewJob};
use crate::outcome_sql::CommitValues;
use crate::{JobId, JobState};

/// The job columns, in the order [`read_job`] expects.
pub(super) const JOB_COLUMNS: &str = "id, machine, fingerprint, state, payload, status, priority, run_at, attempts, \
     max_attempts, timeout_ms, lease_owner, lease_token, lease_expires_at, version, idempotency_key, \
     cancel_requested, created_at, updated_at, last_error, queue, cancel_reason";

/// Inserts a pending job: `?1`..`?12` as [`insert_job`] binds them.
pub(super) const INSERT_JOB: &str =
    "INSERT INTO rk_jobs (id, machine, fingerprint, state, payload, status, priority, run_at, attempts, \
     max_attempts, timeout_ms, version, idempotency_key, cancel_requested, created_at, updated_at, queue) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, 0, ?8, ?9, 0, ?10, 0, ?11, ?11, ?12)";

/// Appends a history entry.
pub(super) const INSERT_HISTORY: &str =
    "INSERT INTO rk_history (job_id, seq, from_state, to_state, status, error, at, attempt, worker, payload) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The commit's values as [`write_commit`] binds them: `?1` the job, then
/// the values [`crate::outcome_sql`] names.
fn commit_param(name: &str) -> String {
    let n = match name {
        "state" => 2,
        "payload" => 3,
        "fingerprint" => 4,
        "status" => 5,
        "run_at" => 6,
        "attempts" => 7,
        "lease_until" => 8,
        "keeps_cancel" => 9,
        "now" => 10,
        "error" => 11,
        other => unreachable!("the commit has no value {other}"),
    };
    format!("?{n}")
}

/// Writes the columns a commit's outcome changes, in the row whose rowid is
/// `?1` (read by [`GET_FOR_COMMIT`] in the same transaction).
pub(super) static COMMIT_JOB: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE rk_jobs SET {} WHERE rowid = ?1",
        crate::outcome_sql::set(commit_param, "")
    )
});

/// What a commit reads of its job: what its checks need (lifecycle, lease,
/// version), its cancellation request, the state and attempts its history
/// entry records, and its rowid, so the update finds the row without the
/// id index; `?2` true reads the payload too, for a commit that keeps it
/// (otherwise it reads `NULL`).
pub(super) const GET_FOR_COMMIT: &str =
    "SELECT status, lease_token, lease_expires_at, version, cancel_requested, state, \
     attempts, CASE WHEN ?2 THEN payload END, rowid, cancel_reason FROM rk_jobs WHERE id = ?1";

/// Writes the lifecycle columns of a job.
pub(super) const UPDATE_LIFECYCLE: &str =
    "UPDATE rk_jobs SET status = ?2, run_at = ?3, attempts = ?4, lease_owner = ?5, lease_token = ?6, \
     lease_expires_at = ?7, cancel_requested = ?8, updated_at = ?9, cancel_reason = ?10 WHERE id = ?1";

/// Leases the claimed jobs whose rowids the JSON array `?5` lists, in one
/// statement: the job at index `i` gets token `?2 + i`. `?1` is the worker,
/// `?3` the lease's expiry, `?4` now. What it writes is what
/// [`JobRecord::claim`] does to each record. (SQLite runs an `UPDATE ..
/// FROM` join into a temporary table first: once per claim, not per job.)
pub(super) const LEASE_CLAIMED: &str =
    "UPDATE rk_jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?1, lease_token = ?2 + c.key, \
     lease_expires_at = ?3, updated_at = ?4 FROM json_each(?5) AS c WHERE rk_jobs.rowid = c.value";

/// Reads one job by id.
pub(super) static GET_JOB: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM rk_jobs WHERE id = ?1"));

/// Reads the next lease token.
pub(super) const NEXT_TOKEN: &str = "SELECT value FROM rk_meta WHERE key = 'next_lease_token'";

/// Sets the next lease token. (`UPDATE ... RETURNING` would do both in one
/// statement, but SQLite builds a temporary table for `RETURNING`.)
pub(super) const SET_NEXT_TOKEN: &str = "UPDATE rk_meta SET value = ?1 WHERE key = 'next_lease_token'";

pub(super) fn backend(error: rusqlite::Error) -> StorageError {
    StorageError::backend(error)
}

pub(super) fn id_bytes(id: JobId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

fn read_id(row: &Row, column: usize) -> rusqlite::Result<JobId> {
    let bytes: [u8; 16] = row.get(column)?;
    Ok(JobId::from_u128(u128::from_be_bytes(bytes)))
}

fn corrupt(id: JobId, message: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        id,
        message: message.into(),
    }
}

fn parse_status(id: JobId, status: &str) -> Result<JobState, StorageError> {
    status
        .parse()
        .map_err(|e: crate::ParseJobStateError| corrupt(id, e.to_string()))
}

fn parse_payload(id: JobId, text: &str) -> Result<Value, StorageError> {
    serde_json::from_str(text).map_err(|e| corrupt(id, format!("the payload is not valid JSON: {e}")))
}

/// A job row as stored, before its text columns are checked.
struct RawJob {
    record: JobRecord,
    status: String,
    payload: String,
}

fn read_raw(row: &Row) -> rusqlite::Result<RawJob> {
    let lease_owner: Option<String> = row.get(11)?;
    let lease_token: Option<i64> = row.get(12)?;
    let lease_expires_at: Option<i64> = row.get(13)?;
    let lease = match (lease_owner, lease_token, lease_expires_at) {
        (Some(owner), Some(token), Some(expires_at)) => Some(Lease {
            owner,
            token: LeaseToken(token.cast_unsigned()),
            expires_at,
        }),
        _ => None,
    };
    Ok(RawJob {
        record: JobRecord {
            id: read_id(row, 0)?,
            machine: row.get(1)?,
            fingerprint: row.get::<_, i64>(2)?.cast_unsigned(),
            state: row.get(3)?,
            payload: Value::Null,
            status: JobState::Pending,
            priority: row.get(6)?,
            run_at: row.get(7)?,
            attempts: row.get(8)?,
            max_attempts: row.get(9)?,
            timeout_ms: row.get::<_, Option<i64>>(10)?.map(i64::cast_unsigned),
            lease,
            version: row.get::<_, i64>(14)?.cast_unsigned(),
            idempotency_key: row.get(15)?,
            cancel_requested: row.get(16)?,
            created_at: row.get(17)?,
            updated_at: row.get(18)?,
            last_error: row.get(19)?,
            queue: row.get(20)?,
            cancel_reason: row.get(21)?,
        },
        status: row.get(5)?,
        payload: row.get(4)?,
    })
}

/// Checks a row's text columns; the payload is parsed only if
/// `with_payload` (otherwise it stays `null`).
fn finish_raw(raw: RawJob, with_payload: bool) -> Result<JobRecord, StorageError> {
    let mut record = raw.record;
    record.status = parse_status(record.id, &raw.status)?;
    if with_payload {
        record.payload = parse_payload(record.id, &raw.payload)?;
    }
    Ok(record)
}

/// A job as read from a row (an error if its stored text is corrupt).
pub(super) type ReadJob = Result<JobRecord, StorageError>;

/// Runs a job query and reads every row; a row whose stored text is
/// corrupt yields an error for that row only.
pub(super) fn query_jobs(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<ReadJob>, StorageError> {
    let jobs = query_jobs_and(conn, sql, params, |_| Ok(()))?;
    Ok(jobs.into_iter().map(|(job, ())| job).collect())
}

/// As [`query_jobs`], with what `extra` reads from the columns that follow
/// the job's in each row.
pub(super) fn query_jobs_and<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    extra: impl Fn(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<(ReadJob, T)>, StorageError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params, |row| Ok((read_raw(row)?, extra(row)?)))
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, extra) = row.map_err(backend)?;
        out.push((finish_raw(raw, true), extra));
    }
    Ok(out)
}

/// One job by id.
pub(super) fn get_job(conn: &Connection, id: JobId) -> Result<Option<JobRecord>, StorageError> {
    get_job_for_commit(conn, id, true)
}

/// One job by id, for a commit: its payload is read only if `with_payload`
/// (otherwise it is left `null`, for the commit to replace).
pub(super) fn get_job_for_commit(
    conn: &Connection,
    id: JobId,
    with_payload: bool,
) -> Result<Option<JobRecord>, StorageError> {
    let mut stmt = conn.prepare_cached(GET_JOB.as_str()).map_err(backend)?;
    let raw = stmt.query_row([id_bytes(id)], read_raw).optional().map_err(backend)?;
    raw.map(|raw| finish_raw(raw, with_payload)).transpose()
}

/// The id of the job holding an idempotency key.
pub(super) fn job_with_key(conn: &Connection, key: &str) -> Result<Option<JobId>, StorageError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM rk_jobs WHERE idempotency_key = ?1")
        .map_err(backend)?;
    stmt.query_row([key], |row| read_id(row, 0)).optional().map_err(backend)
}

/// A history entry as [`INSERT_HISTORY`] binds it, borrowed from what the
/// operation already holds: each field as [`HistoryEntry`]'s, the payload
/// as JSON text.
pub(super) struct HistoryRow<'a> {
    pub seq: u64,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub status: JobState,
    pub error: Option<&'a str>,
    pub at: i64,
    pub attempt: u32,
    pub worker: Option<&'a str>,
    pub payload: &'a str,
}

/// Inserts a new job row and its submission entry.
pub(super) fn insert_job(conn: &Connection, job: &NewJob) -> Result<(), StorageError> {
    let payload = job.payload.to_string();
    let mut stmt = conn.prepare_cached(INSERT_JOB).map_err(backend)?;
    let inserted = stmt.execute(params![
        id_bytes(job.id),
        job.machine,
        job.fingerprint.cast_signed(),
        job.state,
        payload,
        job.priority,
        job.run_at,
        job.max_attempts,
        // `NewJob::check` keeps it under `i64::MAX`.
        job.timeout_ms.map(u64::cast_signed),
        job.idempotency_key,
        job.created_at,
        job.queue,
    ]);
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            return Err(StorageError::DuplicateId(job.id));
        }
        Err(e) => return Err(backend(e)),
    }
    // The submission entry, as `NewJob::submission_entry` makes it.
    let entry = HistoryRow {
        seq: 0,
        from: None,
        to: &job.state,
        status: JobState::Pending,
        error: None,
        at: job.created_at,
        attempt: 0,
        worker: job.submitted_by.as_deref(),
        payload: &payload,
    };
    let mut stmt = conn.prepare_cached(INSERT_HISTORY).map_err(backend)?;
    insert_history(&mut stmt, job.id, &entry)
}

/// Appends job `id`'s history entry `entry` with `stmt`, which is
/// [`INSERT_HISTORY`].
pub(super) fn insert_history(stmt: &mut Statement<'_>, id: JobId, entry: &HistoryRow<'_>) -> Result<(), StorageError> {
    stmt.execute(params![
        id_bytes(id),
        entry.seq.cast_signed(),
        entry.from,
        entry.to,
        entry.status.as_str(),
        entry.error,
        entry.at,
        entry.attempt,
        entry.worker,
        entry.payload,
    ])
    .map_err(backend)?;
    Ok(())
}

/// The statements a commit runs, taken from the connection's statement
/// cache once for a batch of commits rather than once per commit.
pub(super) struct CommitStatements<'c> {
    read: CachedStatement<'c>,
    history: CachedStatement<'c>,
    write: CachedStatement<'c>,
}

impl<'c> CommitStatements<'c> {
    /// Takes the statements from `conn`'s cache (preparing them the first
    /// time); they go back to it when this is dropped.
    pub(super) fn prepare(conn: &'c Connection) -> Result<Self, StorageError> {
        Ok(CommitStatements {
            read: conn.prepare_cached(GET_FOR_COMMIT).map_err(backend)?,
            history: conn.prepare_cached(INSERT_HISTORY).map_err(backend)?,
            write: conn.prepare_cached(COMMIT_JOB.as_str()).map_err(backend)?,
        })
    }

    /// Job `id` as a commit reads it ([`GET_FOR_COMMIT`]): lifecycle, lease
    /// (without its owner), version, cancellation request, state and
    /// attempts, every other field empty; its payload as stored, if
    /// `with_payload`; and its rowid.
    pub(super) fn read(
        &mut self,
        id: JobId,
        with_payload: bool,
    ) -> Result<Option<(JobRecord, Option<String>, i64)>, StorageError> {
        let row = self
            .read
            .query_row(params![id_bytes(id), with_payload], |row| {
                let status: String = row.get(0)?;
                let lease = match (row.get::<_, Option<i64>>(1)?, row.get::<_, Option<i64>>(2)?) {
                    (Some(token), Some(expires_at)) => Some(Lease {
                        owner: String::new(),
                        token: LeaseToken(token.cast_unsigned()),
                        expires_at,
                    }),
                    _ => None,
                };
                let record = JobRecord {
                    lease,
                    version: row.get::<_, i64>(3)?.cast_unsigned(),
                    cancel_requested: row.get(4)?,
                    cancel_reason: row.get(9)?,
                    state: row.get(5)?,
                    attempts: row.get(6)?,
                    ..JobRecord::blank(id)
                };
                Ok((status, record, row.get::<_, Option<String>>(7)?, row.get::<_, i64>(8)?))
            })
            .optional()
            .map_err(backend)?;
        row.map(|(status, mut record, payload, rowid)| {
            record.status = parse_status(id, &status)?;
            Ok((record, payload, rowid))
        })
        .transpose()
    }

    /// Appends job `id`'s history entry `entry`.
    pub(super) fn append_history(&mut self, id: JobId, entry: &HistoryRow<'_>) -> Result<(), StorageError> {
        insert_history(&mut self.history, id, entry)
    }

    /// Writes the columns a commit's outcome changes in row `rowid` (the
    /// history entry is the caller's to append).
    pub(super) fn write(&mut self, rowid: i64, v: &CommitValues) -> Result<(), StorageError> {
        self.write
            .execute(params![
                rowid,
                v.state,
                v.payload,
                v.fingerprint,
                v.status.as_str(),
                v.run_at,
                v.attempts,
                v.lease_until,
                v.keeps_cancel,
                v.now,
                v.error,
            ])
            .map_err(backend)?;
        Ok(())
    }
}

/// Deletes the job whose id is `id` (as stored) with its history.
pub(super) fn delete_job(conn: &Connection, id: &[u8; 16]) -> Result<(), StorageError> {
    for sql in [
        "DELETE FROM rk_history WHERE job_id = ?1",
        "DELETE FROM rk_jobs WHERE id = ?1",
    ] {
        conn.prepare_cached(sql)
            .map_err(backend)?
            .execute([id])
            .map_err(backend)?;
    }
    Ok(())
}

/// Writes the lifecycle columns only (claim, heartbeat, release, cancel
/// request): the payload is not rewritten.
pub(super) fn update_lifecycle(conn: &Connection, r: &JobRecord) -> Result<(), StorageError> {
    let mut stmt = conn.prepare_cached(UPDATE_LIFECYCLE).map_err(backend)?;
    let lease = r.lease.as_ref();
    stmt.execute(params![
        id_bytes(r.id),
        r.status.as_str(),
        r.run_at,
        r.attempts,
        lease.map(|l| l.owner.as_str()),
        lease.map(|l| l.token.0.cast_signed()),
        lease.map(|l| l.expires_at),
        r.cancel_requested,
        r.updated_at,
        r.cancel_reason,
    ])
    .map_err(backend)?;
    Ok(())
}

/// Writes the lease of the jobs a claim picked, in one statement: `claimed`
/// holds them, with their rowids, as [`JobRecord::claim`] left them, in the
/// order their tokens were issued (the first job's token onward, one each).
pub(super) fn lease_claimed(conn: &Connection, claimed: &[(JobRecord, i64)]) -> Result<(), StorageError> {
    let Some((first, lease)) = claimed.first().and_then(|(job, _)| Some((job, job.lease.as_ref()?))) else {
        return Ok(());
    };
    let mut rowids = String::with_capacity(claimed.len() * 8 + 2);
    for (_, rowid) in claimed {
        rowids.push(if rowids.is_empty() { '[' } else { ',' });
        // Writing to a `String` cannot fail.
        let _ = write!(rowids, "{rowid}");
    }
    rowids.push(']');
    let written = conn
        .prepare_cached(LEASE_CLAIMED)
        .map_err(backend)?
        .execute(params![
            lease.owner,
            lease.token.0.cast_signed(),
            lease.expires_at,
            first.updated_at,
            rowids
        ])
        .map_err(backend)?;
    if written != claimed.len() {
        return Err(StorageError::backend(format!(
            "a claim leased {written} of the {} jobs it picked",
            claimed.len()
        )));
    }
    Ok(())
}

/// A job's history, oldest first.
pub(super) fn history(conn: &Connection, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, from_state, to_state, status, error, at, attempt, worker, payload \
             FROM rk_history WHERE job_id = ?1 ORDER BY seq",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([id_bytes(id)], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, u32>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, String>(8)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, from, to, status, error, at, attempt, worker, payload) = row.map_err(backend)?;
        out.push(HistoryEntry {
            seq: seq as u64,
            from,
            to,
            status: parse_status(id, &status)?,
            error,
            at,
            attempt,
            worker,
            payload: parse_payload(id, &payload)?,
        });
    }
    Ok(out)
}

/// Reserves `n` consecutive lease tokens; returns the first.
pub(super) fn reserve_tokens(conn: &Connection, n: u64) -> Result<u64, StorageError> {
    let first: i64 = conn
        .prepare_cached(NEXT_TOKEN)
        .map_err(backend)?
        .query_row([], |row| row.get(0))
        .map_err(backend)?;
    if n == 0 {
        // A claim that found nothing writes nothing, so needs no fsync.
        return Ok(first as u64);
    }
    conn.prepare_cached(SET_NEXT_TOKEN)
        .map_err(backend)?
        .execute([first + n as i64])
        .map_err(backend)?;
    Ok(first as u64)
}

/// Fails a job whose stored row cannot be read, so it stops being claimed:
/// `failed`, with the reason and a lifecycle-only history entry. Other jobs
/// are not affected.
pub(super) fn fail_corrupt(conn: &Connection, id: JobId, reason: &str, now: i64) -> Result<(), StorageError> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE rk_jobs SET status = 'failed', last_error = ?2, version = version + 1, updated_at = ?3, \
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL WHERE id = ?1 RETURNING version, state, attempts",
        )
        .map_err(backend)?;
    let (version, state, attempt): (i64, String, u32) = stmt
        .query_row(params![id_bytes(id), reason, now], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(backend)?;
    let entry = HistoryRow {
        seq: version.cast_unsigned(),
        from: Some(&state),
        to: &state,
        status: JobState::Failed,
        error: Some(reason),
        at: now,
        attempt,
        worker: None,
        payload: "null",
    };
    let mut history = conn.prepare_cached(INSERT_HISTORY).map_err(backend)?;
    insert_history(&mut history, id, &entry)
}

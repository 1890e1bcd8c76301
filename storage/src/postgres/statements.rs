//! The SQL that [`PostgresStorage`](super::PostgresStorage) sends, built
//! once, and [`prepare`], which readies the statements a busy runtime sends
//! most on each new connection.

use std::sync::LazyLock;

use crate::sqlx;
use sqlx::postgres::PgConnection;
use sqlx::Executor;

use super::rows::{array_params, ExpectedRows, HistoryColumns, JobColumns, NewJobColumns, PgQuery, JOB_COLUMNS};

/// The statements that name every job column, built once.
pub(super) static GET_JOB: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM rk_jobs WHERE id = $1"));
pub(super) static GET_JOBS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM rk_jobs WHERE id = ANY($1)"));
pub(super) static LOCK_JOBS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM rk_jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE"));
pub(super) static WRITE_JOBS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE rk_jobs AS j SET {set} FROM unnest({arrays}) AS u({names}) WHERE j.id = u.id",
        set = JobColumns::SET,
        arrays = array_params(1, &JobColumns::TYPES),
        names = JobColumns::NAMES,
    )
});
pub(super) static WRITE_HISTORY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{insert} unnest({arrays}) AS h({names})",
        insert = HistoryColumns::insert_from_h(),
        arrays = array_params(1, &HistoryColumns::TYPES),
        names = HistoryColumns::NAMES,
    )
});
/// A commit batch's optimistic write, one statement: the jobs ($1..$14)
/// whose rows still match their guards ($15..$18) are updated, their history
/// ($19..$28) inserted and the change announced ($29 channel, $30 messages).
/// Returns the ids it wrote.
pub(super) static WRITE_IF_UNCHANGED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH done AS (UPDATE rk_jobs AS j SET {set} FROM unnest({jobs}, {guards}) AS u({job_names}, {guard_names}) \
              WHERE j.id = u.id AND {matches} RETURNING j.id), \
         written AS ({insert} unnest({history}) AS h({history_names}) WHERE h.job_id IN (SELECT id FROM done)), \
         notified AS (SELECT pg_notify($29, m) FROM unnest($30::text[]) AS m WHERE EXISTS (SELECT 1 FROM done)) \
         SELECT array(SELECT id FROM done) AS done, (SELECT count(*) FROM notified) AS notified",
        set = JobColumns::SET,
        jobs = array_params(1, &JobColumns::TYPES),
        guards = array_params(15, &ExpectedRows::TYPES),
        job_names = JobColumns::NAMES,
        guard_names = ExpectedRows::NAMES,
        matches = ExpectedRows::MATCH,
        insert = HistoryColumns::insert_from_h(),
        history = array_params(19, &HistoryColumns::TYPES),
        history_names = HistoryColumns::NAMES,
    )
});
/// New jobs ($1..$11) with their submission entries, announced on channel
/// $12: one statement, so one round trip. The entries are built from the
/// inserted rows rather than sent a second time.
pub(super) static INSERT_NEW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS (INSERT INTO rk_jobs (id, machine, fingerprint, state, payload, status, priority, run_at, \
              attempts, max_attempts, timeout_ms, version, idempotency_key, cancel_requested, created_at, updated_at) \
              SELECT id, machine, fingerprint, state, payload::json, 'pending', priority, run_at, 0, max_attempts, \
              timeout_ms, 0, idempotency_key, false, created_at, created_at FROM unnest({arrays}) AS n({names}) \
              RETURNING id, state, payload, created_at), \
         written AS (INSERT INTO rk_history ({history_names}) \
              SELECT id, 0, NULL, state, 'pending', NULL, created_at, 0, NULL, payload FROM inserted), \
         notified AS (SELECT pg_notify($12, 'ready') WHERE EXISTS (SELECT 1 FROM inserted)) \
         SELECT (SELECT count(*) FROM notified) AS notified",
        arrays = array_params(1, &NewJobColumns::TYPES),
        names = NewJobColumns::NAMES,
        history_names = HistoryColumns::NAMES,
    )
});
pub(super) static LIST_JOBS: LazyLock<String> = LazyLock::new(|| list_jobs(">", ""));
pub(super) static LIST_JOBS_NEWEST: LazyLock<String> = LazyLock::new(|| list_jobs("<", " DESC"));

/// A page of jobs past the cursor `$1`, filtered by `$2`..`$4`.
fn list_jobs(beyond: &str, direction: &str) -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM rk_jobs WHERE ($1::uuid IS NULL OR id {beyond} $1) AND ($2::text IS NULL OR machine = $2) \
         AND ($3::text IS NULL OR state = $3) AND ($4::text IS NULL OR status = $4) ORDER BY id{direction} LIMIT $5"
    )
}
pub(super) static CLAIM_JOBS: LazyLock<String> = LazyLock::new(|| {
    let returning: Vec<String> = JOB_COLUMNS.split(", ").map(|c| format!("j.{c}")).collect();
    format!(
        "WITH ready AS (SELECT id, priority, run_at FROM rk_jobs WHERE status = 'pending' AND run_at <= $1 \
              AND machine = ANY($2) ORDER BY priority, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
         expired AS (SELECT id, priority, run_at FROM rk_jobs WHERE status = 'running' \
              AND lease_expires_at <= $1 AND machine = ANY($2) ORDER BY priority, run_at, id LIMIT $3 \
              FOR UPDATE SKIP LOCKED), \
         candidates AS (SELECT * FROM ready UNION ALL SELECT * FROM expired), \
         picked AS (SELECT id FROM candidates ORDER BY priority, run_at, id LIMIT $3) \
         UPDATE rk_jobs AS j SET status = 'running', attempts = j.attempts + 1, lease_owner = $4, \
           lease_token = nextval('rk_lease_tokens'), lease_expires_at = $1 + $5, updated_at = $1 \
         FROM picked WHERE j.id = picked.id RETURNING {}",
        returning.join(", ")
    )
});

/// Readies a new connection for the statements a busy runtime sends most,
/// before its first real use of them: sqlx keeps each connection's prepared
/// statements. Otherwise the first call on each of a pool's connections
/// pays for parsing the statement and for loading the tables' and indexes'
/// descriptions into the new server process.
///
/// The insert is run with no jobs: its plan does not depend on what the
/// tables hold, and nothing is stored or announced. The claim and the commit
/// are only parsed: their plans are made at their first real use, when the
/// planner sees the table as it is, not on the empty tables of a new schema
/// (with generic plans, a plan made then would be kept for the connection's
/// life). Their parameter types are those Postgres
/// infers (from the casts and the columns they are compared with), which are
/// the types they are bound with; a mismatch would fail every claim or
/// commit.
pub(super) async fn prepare(conn: &mut PgConnection, channel: &str) -> Result<(), sqlx::Error> {
    for statement in [&CLAIM_JOBS, &WRITE_IF_UNCHANGED] {
        conn.prepare(statement.as_str()).await?;
    }
    insert_new(&NewJobColumns::default(), channel)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// New jobs bound to [`INSERT_NEW`], announced on `channel`: the one
/// binding of the insert, for real inserts and [`prepare`] alike.
pub(super) fn insert_new<'q>(jobs: &'q NewJobColumns<'_>, channel: &'q str) -> PgQuery<'q> {
    jobs.bind(sqlx::query(INSERT_NEW.as_str())).bind(channel)
}

//! The SQL that [`PostgresStorage`](super::PostgresStorage) sends, built
//! once, and [`prepare`], which readies the statements a busy runtime sends
//! most on each new connection.

use std::sync::LazyLock;

use crate::sqlx;
use sqlx::postgres::PgConnection;
use sqlx::Executor;

use super::rows::{array_params, CommitColumns, JobColumns, NewJobColumns, PgQuery, JOB_COLUMNS};
use crate::outcome_sql;

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
/// A batch of commits ($1..$14, [`CommitColumns`]) in one statement: each
/// job whose row still has the commit's version and, for a commit under a
/// lease, that unexpired lease (for one without, is not running) gets the
/// columns its outcome changes and its history entry, built from the row as
/// it was (`o`) and the commit; the change is announced on channel $15
/// with the messages $16. Returns the ids it wrote, and those of them whose
/// cancellation is requested with, in the same order, each request's
/// reason.
pub(super) static COMMIT_JOBS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH done AS (UPDATE rk_jobs AS j SET {set} FROM unnest({arrays}) AS u({names}), rk_jobs AS o \
              WHERE j.id = u.id AND o.id = u.id AND o.version = u.version AND {fence} \
              RETURNING {history}, j.cancel_requested AS cancel_requested, j.cancel_reason AS cancel_reason), \
         written AS (INSERT INTO rk_history ({history_names}) SELECT {history_names} FROM done), \
         notified AS (SELECT pg_notify($15, m) FROM unnest($16::text[]) AS m WHERE EXISTS (SELECT 1 FROM done)) \
         SELECT array(SELECT job_id FROM done) AS done, \
              COALESCE(c.ids, '{{}}') AS cancel_requested, COALESCE(c.reasons, '{{}}') AS cancel_reasons, \
              (SELECT count(*) FROM notified) AS notified \
         FROM (SELECT array_agg(job_id) AS ids, array_agg(cancel_reason) AS reasons \
              FROM done WHERE cancel_requested) AS c",
        set = outcome_sql::set(CommitColumns::value, "j."),
        fence = outcome_sql::fence(CommitColumns::value, "j."),
        arrays = array_params(1, &CommitColumns::TYPES),
        names = CommitColumns::NAMES,
        history = outcome_sql::history_select(CommitColumns::value, "o."),
        history_names = outcome_sql::HISTORY_COLUMNS,
    )
});
/// Extends the leases ($1 job ids, $2 tokens) still held at $4 (running
/// under that token, unexpired) to $3; returns the ids it extended, with
/// their cancellation flags.
pub(super) const EXTEND_LEASES: &str = "UPDATE rk_jobs AS j SET lease_expires_at = $3 \
     FROM unnest($1::uuid[], $2::int8[]) AS u(id, token) \
     WHERE j.id = u.id AND j.status = 'running' AND j.lease_token = u.token AND j.lease_expires_at > $4 \
     RETURNING j.id, j.cancel_requested";

/// New jobs ($1..$12) with their submission entries, announced on channel
/// $13: one statement, so one round trip. The entries are built from the
/// inserted rows rather than sent a second time, and name no submitter.
pub(super) static INSERT_NEW: LazyLock<String> = LazyLock::new(|| insert_new_sql(false));
/// [`INSERT_NEW`] for jobs that name who submitted them ($13, in the order
/// of the ids $1); announced on channel $14. Only a batch with a submitter
/// pays for joining them to the inserted rows.
pub(super) static INSERT_NEW_BY: LazyLock<String> = LazyLock::new(|| insert_new_sql(true));

/// [`INSERT_NEW`], or with `by`, [`INSERT_NEW_BY`].
fn insert_new_sql(by: bool) -> String {
    let (worker, submitters, channel) = if by {
        (
            "b.submitted_by",
            " JOIN unnest($1::uuid[], $13::text[]) AS b(id, submitted_by) ON b.id = i.id",
            "$14",
        )
    } else {
        ("NULL", "", "$13")
    };
    format!(
        "WITH inserted AS (INSERT INTO rk_jobs (id, machine, queue, fingerprint, state, payload, status, priority, \
              run_at, attempts, max_attempts, timeout_ms, version, idempotency_key, cancel_requested, created_at, \
              updated_at) \
              SELECT id, machine, queue, fingerprint, state, payload::json, 'pending', priority, run_at, 0, \
              max_attempts, timeout_ms, 0, idempotency_key, false, created_at, created_at \
              FROM unnest({arrays}) AS n({names}) \
              RETURNING id, state, payload, created_at), \
         written AS (INSERT INTO rk_history ({history_names}) \
              SELECT i.id, 0, NULL, i.state, 'pending', NULL, i.created_at, 0, {worker}, i.payload \
              FROM inserted AS i{submitters}), \
         notified AS (SELECT pg_notify({channel}, 'ready') WHERE EXISTS (SELECT 1 FROM inserted)) \
         SELECT (SELECT count(*) FROM notified) AS notified",
        arrays = array_params(1, &NewJobColumns::TYPES),
        names = NewJobColumns::NAMES,
        history_names = outcome_sql::HISTORY_COLUMNS,
    )
}
pub(super) static LIST_JOBS: LazyLock<String> = LazyLock::new(|| list_jobs(">", ""));
pub(super) static LIST_JOBS_NEWEST: LazyLock<String> = LazyLock::new(|| list_jobs("<", " DESC"));

/// A page of at most `$5` jobs past the cursor `$1`, filtered by machine
/// `$2`, state `$3`, lifecycle `$4` and queue `$6`.
fn list_jobs(beyond: &str, direction: &str) -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM rk_jobs WHERE ($1::uuid IS NULL OR id {beyond} $1) AND ($2::text IS NULL OR machine = $2) \
         AND ($3::text IS NULL OR state = $3) AND ($4::text IS NULL OR status = $4) \
         AND ($6::text IS NULL OR queue = $6) ORDER BY id{direction} LIMIT $5"
    )
}
/// Claims at most `$3` jobs of the machines `$2` in queue `$6`, unless it is
/// paused, at `$1` for worker `$4` under leases of `$5` ms: ready ones and
/// ones whose lease expired, in (priority, run_at, id) order.
pub(super) static CLAIM_JOBS: LazyLock<String> = LazyLock::new(|| {
    let returning: Vec<String> = JOB_COLUMNS.split(", ").map(|c| format!("j.{c}")).collect();
    let unpaused = "NOT EXISTS (SELECT 1 FROM rk_paused_queues WHERE queue = $6)";
    format!(
        "WITH ready AS (SELECT id, priority, run_at FROM rk_jobs WHERE status = 'pending' AND run_at <= $1 \
              AND queue = $6 AND machine = ANY($2) AND {unpaused} ORDER BY priority, run_at, id LIMIT $3 \
              FOR UPDATE SKIP LOCKED), \
         expired AS (SELECT id, priority, run_at FROM rk_jobs WHERE status = 'running' \
              AND lease_expires_at <= $1 AND queue = $6 AND machine = ANY($2) AND {unpaused} \
              ORDER BY priority, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
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
    for statement in [CLAIM_JOBS.as_str(), COMMIT_JOBS.as_str(), EXTEND_LEASES] {
        conn.prepare(statement).await?;
    }
    Inserts::bare()
        .insert_new(&NewJobColumns::default(), channel)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Finds the jobs that hold the idempotency keys `$1`.
pub(super) const JOBS_WITH_KEYS: &str = "SELECT idempotency_key, id FROM rk_jobs WHERE idempotency_key = ANY($1)";

/// The statements that insert jobs: with the tables by their bare names,
/// for this storage's own connections (whose `search_path` is its schema),
/// or named in the schema, for a connection of the application's.
pub(super) struct Inserts {
    /// [`INSERT_NEW`].
    pub(super) new: String,
    /// [`INSERT_NEW_BY`].
    pub(super) new_by: String,
    /// [`JOBS_WITH_KEYS`].
    pub(super) keys: String,
}

impl Inserts {
    /// The statements for this storage's own connections.
    pub(super) fn bare() -> Self {
        Inserts {
            new: INSERT_NEW.clone(),
            new_by: INSERT_NEW_BY.clone(),
            keys: JOBS_WITH_KEYS.to_owned(),
        }
    }

    /// The statements with their tables named in `schema` (a checked
    /// schema name), for any connection to the database.
    pub(super) fn in_schema(schema: &str) -> Self {
        let qualify = |sql: &str| {
            sql.replace("rk_jobs", &format!("\"{schema}\".rk_jobs"))
                .replace("rk_history", &format!("\"{schema}\".rk_history"))
        };
        let bare = Inserts::bare();
        Inserts {
            new: qualify(&bare.new),
            new_by: qualify(&bare.new_by),
            keys: qualify(&bare.keys),
        }
    }

    /// New jobs bound to their insert ([`INSERT_NEW`], or [`INSERT_NEW_BY`]
    /// if one names who submitted it), announced on `channel`: the one
    /// binding of the insert, for real inserts and [`prepare`] alike.
    pub(super) fn insert_new<'q>(&'q self, jobs: &'q NewJobColumns<'_>, channel: &'q str) -> PgQuery<'q> {
        let by = jobs.name_submitters();
        let sql = if by { &self.new_by } else { &self.new };
        jobs.bind(sqlx::query(sql), by).bind(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::Inserts;

    #[test]
    fn the_inserts_for_an_applications_connection_name_every_table_in_the_schema() {
        let app = Inserts::in_schema("shop");
        for sql in [&app.new, &app.new_by, &app.keys] {
            let bare = sql.replace("\"shop\".rk_jobs", "").replace("\"shop\".rk_history", "");
            assert!(!bare.contains("rk_"), "a table left unqualified: {sql}");
            assert!(sql.contains("\"shop\".rk_jobs"), "{sql}");
        }
        assert!(app.new.contains("\"shop\".rk_history"));
    }
}

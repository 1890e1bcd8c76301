//! [`SqliteStorage`]: one SQLite file in WAL mode, written by a single
//! thread that group-commits many operations per transaction.

mod rows;
mod schema;
mod syncer;
mod unsynced;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{params, params_from_iter, Connection, OpenFlags};
use tokio::sync::broadcast;

use crate::capabilities::Capabilities;
use crate::commit::{Commit, Committed};
use crate::error::StorageError;
use crate::events::{EventBus, StorageEvent};
use crate::model::{
    cancel_commit, commit_each, CancelOutcome, ClaimRequest, CountRow, DeleteOutcome, Heartbeat, HistoryEntry,
    Inserted, JobFilter, JobPage, JobRecord, LeaseToken, ListOrder, Millis, NewJob,
};
use crate::outcome_sql::CommitValues;
use crate::storage::Storage;
use crate::{JobId, JobState};

use rows::{backend, CommitStatements, HistoryRow, JOB_COLUMNS};
use syncer::Syncer;
use unsynced::Unsynced;
use writer::{Answer, Writer};

/// SQLite's `synchronous` setting, which decides what a committed
/// transaction survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `FULL` (the default): an operation is answered only once its
    /// transaction's WAL frames are fsynced, so a committed transition
    /// survives a crash of the process *and* of the machine (power loss).
    /// Group commit spreads each fsync over every operation in the batch,
    /// and the fsync runs on its own thread while the next transaction is
    /// written (for a file; an in-memory database is never synced).
    ///
    /// One exception is answered at commit, before its fsync: a claim whose
    /// jobs were all last changed by durable transactions. A power loss can
    /// only undo the claim itself, which leaves the job pending as if its
    /// worker had died before its first commit; a step never runs on a
    /// transition that is not yet durable.
    #[default]
    Full,
    /// `NORMAL`: survives a crash of the process; a power loss may undo the
    /// last transactions (never corrupts the file).
    Normal,
    /// `OFF`: no fsync at all; fastest, and a power loss may corrupt the
    /// file. For benchmarks and throwaway data.
    Off,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

/// How to open a [`SqliteStorage`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability; see [`Synchronous`]. Default: `Full`.
    pub synchronous: Synchronous,
    /// The most operations one transaction groups. Default: 1024.
    pub max_batch: usize,
    /// How long to wait on a lock held by another process. Default: 5 s.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            max_batch: 1024,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Jobs in one SQLite file.
///
/// The file is opened in WAL mode; on open, the schema is created, or
/// migrated to this build's version (a newer one is refused). One thread
/// owns the connection and runs every operation, grouping all operations that
/// arrive while a transaction is in progress into the next one, so many
/// transitions share one fsync. Durable by default: see
/// [`Synchronous`].
///
/// Several processes may open the same file (SQLite's locking keeps it
/// consistent), but change notifications reach only the process that made
/// the change; share a database between machines with Postgres.
///
/// Clones share the same connection.
#[derive(Clone)]
pub struct SqliteStorage {
    writer: Writer,
    /// Job rows not yet durable; `None` when every commit is answered at
    /// once (the database is synced inside `COMMIT`, or never).
    unsynced: Option<Arc<Unsynced>>,
    events: EventBus,
}

impl SqliteStorage {
    /// Opens (or creates) the database at `path` with default options.
    ///
    /// # Errors
    /// When the file cannot be opened, is not a RuneKernel database of a
    /// known schema version, or the schema cannot be created or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// The same as [`open`](Self::open); the name the original RuneKernel
    /// description uses.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn new(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open(path)
    }

    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StorageError> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StorageError::backend(format!("cannot open SQLite database {}: {e}", path.display())))?;
        Self::start(conn, &options, std::fs::File::sync_data)
    }

    /// A private database in memory, gone when the storage is dropped.
    ///
    /// # Errors
    /// When SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self, StorageError> {
        Self::start(
            Connection::open_in_memory().map_err(backend)?,
            &SqliteOptions::default(),
            std::fs::File::sync_data,
        )
    }

    /// Starts the writer on `conn`; `sync` flushes the WAL file to disk.
    fn start(conn: Connection, options: &SqliteOptions, sync: syncer::SyncFn) -> Result<Self, StorageError> {
        let syncer = configure(&conn, options, sync)?;
        Ok(SqliteStorage {
            unsynced: syncer.unsynced(),
            writer: Writer::spawn(conn, options.max_batch, syncer)?,
            events: EventBus::new(),
        })
    }
}

/// Sets the connection up and brings its schema to this build's version;
/// returns who makes its commits durable.
fn configure(conn: &Connection, options: &SqliteOptions, sync: syncer::SyncFn) -> Result<Syncer, StorageError> {
    conn.busy_timeout(options.busy_timeout).map_err(backend)?;
    let journal: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(backend)?;
    // `FULL` on a file: `COMMIT` only writes the WAL, a sync thread fsyncs it.
    let synced_wal = conn.path().filter(|path| {
        options.synchronous == Synchronous::Full && !path.is_empty() && journal.eq_ignore_ascii_case("wal")
    });
    let synchronous = match synced_wal {
        Some(_) => Synchronous::Normal,
        None => options.synchronous,
    };
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
    // Each operation of a group commit runs in a savepoint; keep their
    // rollback journal in memory rather than in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(backend)?;
    // Without the query planner stability guarantee, SQLite re-plans a
    // claim query whenever its `now` parameter changes (every claim).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(backend)?;
    schema::migrate(conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    match synced_wal {
        // Its first fsync also covers the migration, committed unsynced.
        Some(path) => Syncer::for_wal(conn, Path::new(path), sync),
        None => Ok(Syncer::InCommit),
    }
}

/// The ids of at most `?3` jobs in the finished state `?1` last written
/// before `?2`. The status test repeats the finished-jobs index's condition
/// word for word, so the index is used.
const PRUNABLE: &str = "SELECT id FROM rk_jobs WHERE status <> 'pending' AND status <> 'running' AND status = ?1 \
     AND updated_at < ?2 LIMIT ?3";

/// Takes or renews duty `?1` for `?2` until `?3`, unless another owner's
/// hold runs past `?4`.
const TAKE_DUTY: &str = "INSERT INTO rk_duties (name, owner, expires_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
     WHERE rk_duties.owner = excluded.owner OR rk_duties.expires_at <= ?4";

/// The claim's two queries, for `machines` machine names: jobs whose lease
/// expired, then ready jobs, of queue `?3` unless it is paused. Parameters:
/// `?1` now, `?2` the limit, `?3` the queue, `?4...` the machine names.
fn claim_queries(machines: usize) -> [String; 2] {
    let machines = placeholders(machines, 4);
    let unpaused = "NOT EXISTS (SELECT 1 FROM rk_paused_queues WHERE queue = ?3)";
    [
        format!(
            "SELECT {JOB_COLUMNS}, rowid FROM rk_jobs WHERE status = 'running' AND lease_expires_at <= ?1 \
             AND queue = ?3 AND machine IN ({machines}) AND {unpaused} ORDER BY priority, run_at, id LIMIT ?2"
        ),
        format!(
            "SELECT {JOB_COLUMNS}, rowid FROM rk_jobs WHERE status = 'pending' AND run_at <= ?1 \
             AND queue = ?3 AND machine IN ({machines}) AND {unpaused} ORDER BY priority, run_at, id LIMIT ?2"
        ),
    ]
}

/// The column after the job's in a claim query's rows.
const CLAIM_ROWID: usize = 22;

fn placeholders(n: usize, first: usize) -> String {
    (0..n).map(|i| format!("?{}", first + i)).collect::<Vec<_>>().join(", ")
}

fn insert_one(conn: &Connection, job: &NewJob) -> Result<Inserted, StorageError> {
    if let Some(key) = &job.idempotency_key {
        if let Some(id) = rows::job_with_key(conn, key)? {
            return Ok(Inserted { id, created: false });
        }
    }
    rows::insert_job(conn, job)?;
    Ok(Inserted {
        id: job.id,
        created: true,
    })
}

/// Checks `commit` against its job's version and lease, then appends its
/// history entry and writes the columns its outcome changes, with
/// `statements` of the transaction it runs in. Reads the stored payload
/// only for a commit that keeps it (its history entry records it).
fn commit_one(statements: &mut CommitStatements<'_>, commit: &CommitValues) -> Result<Committed, StorageError> {
    let keeps_payload = commit.payload.is_none();
    let (job, kept, rowid) = statements
        .read(commit.id, keeps_payload)?
        .ok_or(StorageError::NotFound(commit.id))?;
    let lease = commit.lease_token.map(|token| LeaseToken(token.cast_unsigned()));
    job.check_fence(commit.version.cast_unsigned(), lease, commit.now)?;
    // A finished job's request is cleared; one that goes on keeps it.
    let committed = if commit.keeps_cancel {
        Committed::of(&job)
    } else {
        Committed::new(false)
    };
    let entry = HistoryRow {
        seq: job.version + 1,
        from: Some(&job.state),
        to: commit.state.as_deref().unwrap_or(&job.state),
        status: commit.status,
        error: commit.error.as_deref(),
        at: commit.now,
        attempt: job.attempts,
        worker: commit.worker.as_deref(),
        payload: commit.payload.as_deref().or(kept.as_deref()).unwrap_or("null"),
    };
    statements.append_history(commit.id, &entry)?;
    statements.write(rowid, commit)?;
    Ok(committed)
}

/// Reads a job that a lease operation needs, and checks the lease.
fn leased(conn: &Connection, id: JobId, lease: LeaseToken, now: Millis) -> Result<JobRecord, StorageError> {
    let record = rows::get_job(conn, id)?.ok_or(StorageError::NotFound(id))?;
    record.check_lease(lease, now)?;
    Ok(record)
}

impl SqliteStorage {
    fn announce_commit(&self, commit: &Commit) {
        self.events.send(StorageEvent::JobChanged(commit.id));
        if commit.status() == JobState::Pending {
            self.events.send(StorageEvent::JobsReady);
        }
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError> {
        job.check()?;
        let inserted = self.writer.call(move |conn| insert_one(conn, &job)).await?;
        if inserted.created {
            self.events.send(StorageEvent::JobsReady);
        }
        Ok(inserted)
    }

    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        jobs.iter().try_for_each(NewJob::check)?;
        let inserted = self
            .writer
            .call(move |conn| {
                jobs.iter()
                    .map(|job| insert_one(conn, job))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        if inserted.iter().any(|i| i.created) {
            self.events.send(StorageEvent::JobsReady);
        }
        Ok(inserted)
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        self.writer.call(move |conn| rows::get_job(conn, id)).await
    }

    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError> {
        let filter = filter.clone();
        let (beyond, direction, start) = match order {
            ListOrder::OldestFirst => (">", "", JobId::from_u128(0)),
            ListOrder::NewestFirst => ("<", " DESC", JobId::from_u128(u128::MAX)),
        };
        self.writer
            .call(move |conn| {
                let mut clauses = vec![format!("id {beyond} ?1")];
                let mut values: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Blob(
                    rows::id_bytes(after.unwrap_or(start)).to_vec(),
                )];
                let mut add = |column: &str, value: String| {
                    values.push(rusqlite::types::Value::Text(value));
                    clauses.push(format!("{column} = ?{}", values.len()));
                };
                if let Some(machine) = filter.machine {
                    add("machine", machine);
                }
                if let Some(queue) = filter.queue {
                    add("queue", queue);
                }
                if let Some(state) = filter.state {
                    add("state", state);
                }
                if let Some(status) = filter.status {
                    add("status", status.as_str().to_owned());
                }
                values.push(rusqlite::types::Value::Integer(
                    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
                ));
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM rk_jobs WHERE {} ORDER BY id{direction} LIMIT ?{}",
                    clauses.join(" AND "),
                    values.len()
                );
                let jobs = rows::query_jobs(conn, &sql, params_from_iter(values))?
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(JobPage::from_fetched(jobs, limit))
            })
            .await
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        if request.limit == 0 || request.machines.is_empty() {
            return Ok(Vec::new());
        }
        let unsynced = self.unsynced.clone();
        self.writer
            .call_answering(move |conn| {
                let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
                let mut values: Vec<rusqlite::types::Value> =
                    vec![request.now.into(), limit.into(), request.queue.clone().into()];
                values.extend(request.machines.iter().map(|m| rusqlite::types::Value::Text(m.clone())));
                let [expired, ready] = claim_queries(request.machines.len());
                let rowid = |row: &rusqlite::Row| row.get::<_, i64>(CLAIM_ROWID);
                let mut candidates = rows::query_jobs_and(conn, &expired, params_from_iter(values.iter()), rowid)?;
                candidates.extend(rows::query_jobs_and(
                    conn,
                    &ready,
                    params_from_iter(values.iter()),
                    rowid,
                )?);
                let mut jobs = Vec::with_capacity(candidates.len());
                for (candidate, rowid) in candidates {
                    match candidate {
                        Ok(job) => jobs.push((job, rowid)),
                        Err(StorageError::Corrupt { id, message }) => {
                            tracing::error!(job = %id, %message, "failing a job whose stored row cannot be read");
                            rows::fail_corrupt(conn, id, &message, request.now)?;
                        }
                        Err(other) => return Err(other),
                    }
                }
                jobs.sort_by_key(|(j, _)| (j.priority, j.run_at, j.id));
                jobs.truncate(request.limit);
                // Decided before the claim's own writes mark its rows.
                let durable = unsynced
                    .as_ref()
                    .is_none_or(|u| u.all_durable(jobs.iter().map(|(_, rowid)| *rowid)));
                let answer = if durable {
                    Answer::WhenCommitted
                } else {
                    Answer::WhenDurable
                };
                let first = rows::reserve_tokens(conn, jobs.len() as u64)?;
                for (offset, (job, _)) in jobs.iter_mut().enumerate() {
                    job.claim(
                        &request.worker,
                        LeaseToken(first + offset as u64),
                        request.now,
                        request.lease_ms,
                    );
                }
                rows::lease_claimed(conn, &jobs)?;
                Ok((jobs.into_iter().map(|(job, _)| job).collect(), answer))
            })
            .await
    }

    async fn claim_job(
        &self,
        id: JobId,
        worker: &str,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Option<JobRecord>, StorageError> {
        let worker = worker.to_owned();
        self.writer
            .call(move |conn| {
                let mut record = rows::get_job(conn, id)?.ok_or(StorageError::NotFound(id))?;
                if record.status != JobState::Pending && !record.is_claimable(now) {
                    return Ok(None);
                }
                let token = rows::reserve_tokens(conn, 1)?;
                record.claim(&worker, LeaseToken(token), now, lease_ms);
                rows::update_lifecycle(conn, &record)?;
                Ok(Some(record))
            })
            .await
    }

    async fn commit(&self, commit: Commit) -> Result<JobRecord, StorageError> {
        let written = self
            .writer
            .call({
                let values = CommitValues::of(&commit);
                move |conn| {
                    commit_one(&mut CommitStatements::prepare(conn)?, &values)?;
                    rows::get_job(conn, values.id)?.ok_or(StorageError::NotFound(values.id))
                }
            })
            .await?;
        self.announce_commit(&commit);
        Ok(written)
    }

    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        // Written out here, so the writer thread only binds them.
        let batch: Vec<CommitValues> = commits.iter().map(CommitValues::of).collect();
        let results = self
            .writer
            // No savepoint per commit: the operation's savepoint undoes a
            // batch that a database error failed.
            .call(move |conn| {
                let mut statements = CommitStatements::prepare(conn)?;
                commit_each(&batch, |commit| commit_one(&mut statements, commit))
            })
            .await?;
        for (commit, result) in commits.iter().zip(&results) {
            if result.is_ok() {
                self.announce_commit(commit);
            }
        }
        Ok(results)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new().batched_commits()
    }

    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        self.writer.call(move |conn| rows::history(conn, id)).await
    }

    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError> {
        self.writer
            .call(move |conn| {
                let mut results = Vec::with_capacity(leases.len());
                for (id, lease) in leases {
                    match leased(conn, id, lease, now) {
                        Ok(mut record) => {
                            let beat = record.extend_lease(now, lease_ms);
                            rows::update_lifecycle(conn, &record)?;
                            results.push(Ok(beat));
                        }
                        Err(error @ StorageError::Backend(_)) => return Err(error),
                        Err(error) => results.push(Err(error)),
                    }
                }
                Ok(results)
            })
            .await
    }

    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError> {
        self.writer
            .call(move |conn| {
                let mut record = leased(conn, id, lease, now)?;
                record.release(now);
                rows::update_lifecycle(conn, &record)
            })
            .await?;
        self.events.send(StorageEvent::JobsReady);
        Ok(())
    }

    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError> {
        let outcome = self
            .writer
            .call(move |conn| {
                let mut record = rows::get_job(conn, id)?.ok_or(StorageError::NotFound(id))?;
                match record.status {
                    JobState::Pending => {
                        let mut record = record;
                        let commit = cancel_commit(&record, now, reason);
                        let committed = commit_one(&mut CommitStatements::prepare(conn)?, &CommitValues::of(&commit))?;
                        record.committed(commit, committed);
                        Ok(CancelOutcome::Cancelled(Box::new(record)))
                    }
                    JobState::Running => {
                        record.request_cancel(reason);
                        rows::update_lifecycle(conn, &record)?;
                        Ok(CancelOutcome::Requested)
                    }
                    finished => Ok(CancelOutcome::AlreadyFinished(finished)),
                }
            })
            .await?;
        if matches!(outcome, CancelOutcome::Cancelled(_)) {
            self.events.send(StorageEvent::JobChanged(id));
        }
        Ok(outcome)
    }

    async fn counts(&self) -> Result<Vec<CountRow>, StorageError> {
        self.writer
            .call(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT machine, queue, state, status, COUNT(*) FROM rk_jobs \
                         GROUP BY machine, queue, state, status",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    })
                    .map_err(backend)?;
                let mut out = Vec::new();
                for row in rows {
                    let (machine, queue, state, status, count) = row.map_err(backend)?;
                    let status = status
                        .parse::<JobState>()
                        .map_err(|e| StorageError::backend(e.to_string()))?;
                    out.push(CountRow {
                        machine,
                        queue,
                        state,
                        status,
                        count: count as u64,
                    });
                }
                out.sort();
                Ok(out)
            })
            .await
    }

    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError> {
        let outcome = self
            .writer
            .call(move |conn| {
                let record = rows::get_job_for_commit(conn, id, false)?.ok_or(StorageError::NotFound(id))?;
                if !record.status.is_finished() {
                    return Ok(DeleteOutcome::NotFinished(record.status));
                }
                rows::delete_job(conn, &rows::id_bytes(id))?;
                Ok(DeleteOutcome::Deleted)
            })
            .await?;
        if outcome == DeleteOutcome::Deleted {
            self.events.send(StorageEvent::JobChanged(id));
        }
        Ok(outcome)
    }

    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError> {
        status.expect_finished()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.writer
            .call(move |conn| {
                let ids: Vec<[u8; 16]> = conn
                    .prepare_cached(PRUNABLE)
                    .map_err(backend)?
                    .query_map(params![status.as_str(), before, limit], |row| row.get(0))
                    .map_err(backend)?
                    .collect::<Result<_, _>>()
                    .map_err(backend)?;
                for id in &ids {
                    rows::delete_job(conn, id)?;
                }
                Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
            })
            .await
    }

    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError> {
        let (duty, owner) = (duty.to_owned(), owner.to_owned());
        let until = crate::model::add_ms(now, ttl_ms);
        self.writer
            .call(move |conn| {
                let taken = conn
                    .prepare_cached(TAKE_DUTY)
                    .map_err(backend)?
                    .execute(params![duty, owner, until, now])
                    .map_err(backend)?;
                Ok(taken == 1)
            })
            .await
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError> {
        let queue = queue.to_owned();
        let was = self
            .writer
            .call(move |conn| {
                let was = conn
                    .prepare_cached("SELECT 1 FROM rk_paused_queues WHERE queue = ?1")
                    .map_err(backend)?
                    .exists([&queue])
                    .map_err(backend)?;
                let sql = if paused {
                    "INSERT OR IGNORE INTO rk_paused_queues (queue) VALUES (?1)"
                } else {
                    "DELETE FROM rk_paused_queues WHERE queue = ?1"
                };
                conn.prepare_cached(sql)
                    .map_err(backend)?
                    .execute([&queue])
                    .map_err(backend)?;
                Ok(was)
            })
            .await?;
        if was && !paused {
            self.events.send(StorageEvent::JobsReady);
        }
        Ok(was)
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StorageError> {
        self.writer
            .call(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT queue FROM rk_paused_queues ORDER BY queue")
                    .map_err(backend)?;
                let queues = stmt.query_map([], |row| row.get(0)).map_err(backend)?;
                queues.collect::<Result<Vec<String>, _>>().map_err(backend)
            })
            .await
    }

    fn subscribe(&self) -> broadcast::Receiver<StorageEvent> {
        self.events.subscribe()
    }

    fn subscribe_ready(&self) -> broadcast::Receiver<StorageEvent> {
        self.events.subscribe_ready()
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{params, StatementStatus};

    use super::*;

    fn configured() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn, &SqliteOptions::default(), std::fs::File::sync_data).unwrap();
        conn
    }

    /// The opcodes of `sql`'s program.
    fn program(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        // Unbound parameters are NULL, which EXPLAIN does not mind.
        let mut rows = stmt.raw_query();
        let mut ops = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            ops.push(row.get(1).unwrap());
        }
        ops
    }

    /// Holds every WAL sync while closed.
    static SYNC_GATE: (std::sync::Mutex<bool>, std::sync::Condvar) =
        (std::sync::Mutex::new(true), std::sync::Condvar::new());

    fn gated_sync(file: &std::fs::File) -> std::io::Result<()> {
        let (open, opened) = &SYNC_GATE;
        let mut guard = open.lock().unwrap();
        while !*guard {
            guard = opened.wait(guard).unwrap();
        }
        file.sync_data()
    }

    fn set_sync_gate(open: bool) {
        *SYNC_GATE.0.lock().unwrap() = open;
        SYNC_GATE.1.notify_all();
    }

    fn job(run_at: i64) -> NewJob {
        NewJob {
            id: JobId::new(),
            machine: "m".to_owned(),
            queue: crate::DEFAULT_QUEUE.to_owned(),
            fingerprint: 1,
            state: "start".to_owned(),
            payload: serde_json::json!({}),
            priority: 0,
            run_at,
            max_attempts: 3,
            timeout_ms: None,
            idempotency_key: None,
            created_at: 0,
            submitted_by: None,
        }
    }

    fn claim_one(now: i64) -> ClaimRequest {
        ClaimRequest {
            worker: "w".to_owned(),
            machines: vec!["m".to_owned()],
            queue: crate::DEFAULT_QUEUE.to_owned(),
            limit: 1,
            now,
            lease_ms: 30_000,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_waits_for_the_fsync_only_when_a_job_it_returns_is_not_yet_durable() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("jobs.db")).unwrap();
        let storage = SqliteStorage::start(conn, &SqliteOptions::default(), gated_sync).unwrap();
        let durable = job(1);
        storage.insert_batch(vec![durable.clone()]).await.unwrap();

        set_sync_gate(false);
        let inserting = {
            let storage = storage.clone();
            tokio::spawn(async move { storage.insert_batch(vec![job(2)]).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!inserting.is_finished(), "an insert is answered only once durable");

        // The durable job is claimed at once, though its claim's own fsync waits.
        let claimed = tokio::time::timeout(Duration::from_secs(5), storage.claim(claim_one(10)))
            .await
            .expect("a claim of a durable job is answered at commit")
            .unwrap();
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![durable.id]);

        // The job whose insert is not durable yet is not handed out before it is.
        let claiming = {
            let storage = storage.clone();
            tokio::spawn(async move { storage.claim(claim_one(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!claiming.is_finished(), "the claim waits for the insert's fsync");

        set_sync_gate(true);
        inserting.await.unwrap().unwrap();
        assert_eq!(claiming.await.unwrap().unwrap().len(), 1);
    }

    #[test]
    fn the_statements_run_for_each_job_build_no_temporary_table() {
        let conn = configured();
        let per_job = [
            rows::INSERT_JOB,
            rows::INSERT_HISTORY,
            rows::COMMIT_JOB.as_str(),
            rows::GET_FOR_COMMIT,
            rows::UPDATE_LIFECYCLE,
            rows::GET_JOB.as_str(),
            rows::NEXT_TOKEN,
            rows::SET_NEXT_TOKEN,
        ];
        for sql in per_job {
            let program = program(&conn, sql);
            assert!(
                !program.iter().any(|op| op == "OpenEphemeral"),
                "{sql} builds a temporary table"
            );
        }
    }

    #[test]
    fn a_claim_leases_its_jobs_by_rowid_in_one_statement() {
        let conn = configured();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", rows::LEASE_CLAIMED))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params![None::<String>, 0_i64, 0_i64, 0_i64, "[]"], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("SEARCH rk_jobs USING INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|step| step.starts_with("SCAN rk_jobs")), "{plan:?}");

        let jobs = [job(1), job(2), job(3)];
        for new in &jobs {
            rows::insert_job(&conn, new).unwrap();
        }
        let rowid = |id: JobId| -> i64 {
            conn.query_row("SELECT rowid FROM rk_jobs WHERE id = ?1", [rows::id_bytes(id)], |row| {
                row.get(0)
            })
            .unwrap()
        };
        // The second job is left pending; the others are leased in the
        // order given, tokens counting up from 40.
        let claimed: Vec<(JobRecord, i64)> = [&jobs[2], &jobs[0]]
            .into_iter()
            .enumerate()
            .map(|(offset, new)| {
                let mut record = JobRecord::from_new(new);
                record.claim("w", LeaseToken(40 + offset as u64), 7, 100);
                (record, rowid(new.id))
            })
            .collect();
        rows::lease_claimed(&conn, &claimed).unwrap();
        for (record, _) in &claimed {
            assert_eq!(rows::get_job(&conn, record.id).unwrap().as_ref(), Some(record));
        }
        assert_eq!(
            rows::get_job(&conn, jobs[1].id).unwrap().map(|r| r.status),
            Some(JobState::Pending)
        );

        // A job that is gone fails the whole batch, which the claim's
        // savepoint then undoes.
        let gone = (claimed[0].0.clone(), 1_000_000);
        let error = rows::lease_claimed(&conn, &[gone]).unwrap_err();
        assert!(error.to_string().contains("leased 0 of the 1 jobs"), "{error}");
    }

    #[test]
    fn a_claim_query_is_planned_once_whatever_the_time() {
        let conn = configured();
        for sql in claim_queries(1) {
            for now in 0..3_i64 {
                rows::query_jobs(&conn, &sql, params![now, 10_i64, "q", "m"]).unwrap();
            }
            let stmt = conn.prepare_cached(&sql).unwrap();
            assert_eq!(
                stmt.get_status(StatementStatus::RePrepare),
                0,
                "{sql} was planned again"
            );
        }
    }

    #[test]
    fn pruning_reads_only_the_finished_jobs() {
        let conn = configured();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {PRUNABLE}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["completed", 0_i64, 10_i64], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|step| step.contains("rk_jobs_finished")), "{plan:?}");
    }
}

//! [`PostgresStorage`]: jobs in Postgres, shared by any number of runtimes on
//! any number of machines.
//!
//! Claims are one statement with `FOR UPDATE SKIP LOCKED`. A batch of
//! commits is one statement too: each job whose row still has the commit's
//! version and lease gets the columns its outcome changes, its history entry
//! is built from the row as it was, and the change is announced; nothing is
//! read first. A commit the statement did not write is judged against its
//! row afterwards, for a precise error. Heartbeats are one statement for
//! every lease. Changes are announced with `NOTIFY` on a channel per schema,
//! which every process `LISTEN`s to. Each pooled connection is readied for
//! the claim, the insert, the commit and the heartbeat as it opens, so none
//! pays for that at its first use.

mod migrations;
mod rows;
mod statements;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::sqlx;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, Postgres, Transaction};
use tokio::sync::broadcast;

use crate::capabilities::Capabilities;
use crate::commit::{Commit, Committed};
use crate::error::StorageError;
use crate::events::{EventBus, StorageEvent};
use crate::model::{
    cancel_commit, only, CancelOutcome, ClaimRequest, CountRow, DeleteOutcome, Heartbeat, HistoryEntry, Inserted,
    JobFilter, JobPage, JobRecord, LeaseToken, ListOrder, Millis, NewJob,
};
use crate::storage::Storage;
use crate::{JobId, JobState};

use rows::{backend, read_job, text, CommitColumns, JobColumns, NewJobColumns};
use statements::{
    Inserts, CLAIM_JOBS, COMMIT_JOBS, EXTEND_LEASES, GET_JOB, GET_JOBS, LIST_JOBS, LIST_JOBS_NEWEST, LOCK_JOBS,
    WRITE_JOBS,
};

/// How long a pooled connection may sit idle before it is checked, with
/// one round trip, as it is taken (pgx's pool, under River, does the
/// same). A connection used within that time is taken unchecked, so each
/// claim and each commit batch of a busy runtime waits for one round trip
/// rather than two (sqlx still checks a connection as it goes back to the
/// pool, after the answer). One that broke within that time fails the
/// statement sent on it: a failed claim is tried again, and the jobs of a
/// failed commit batch are claimed again once their leases run out.
const PING_IDLE: Duration = Duration::from_secs(1);

/// How to connect a [`PostgresStorage`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema that holds RuneKernel's tables (created if missing), so
    /// several applications can share one database. Lowercase letters,
    /// digits and `_`, starting with a letter or `_`, at most 63 characters.
    /// Default: `runekernel`.
    pub schema: String,
    /// The pool size. Default: 10.
    pub max_connections: u32,
    /// Connections the pool keeps open even when idle, so a burst of work
    /// after a quiet spell does not first wait for new connections (each new
    /// one also spends about a millisecond of server time being readied for
    /// RuneKernel's statements). A busy runtime uses about six (two claims,
    /// up to four commit batches). Default: 0, sqlx's default; the pool
    /// grows as needed.
    pub min_connections: u32,
    /// How long to wait for a pooled connection. Default: 10 s.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "runekernel".to_owned(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl PostgresOptions {
    /// These options with another schema.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }
}

/// Jobs in a Postgres database.
///
/// Clones share the same pool. Dropping the last clone stops its listener.
#[derive(Clone)]
pub struct PostgresStorage {
    pool: PgPool,
    events: EventBus,
    channel: String,
    schema: String,
    /// The inserts for this storage's own connections.
    own_inserts: std::sync::Arc<Inserts>,
    /// The inserts for a connection of the application's.
    app_inserts: std::sync::Arc<Inserts>,
    _listener: std::sync::Arc<ListenerTask>,
}

/// Aborts the LISTEN task when the last storage clone goes.
struct ListenerTask(tokio::task::JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn check_schema_name(schema: &str) -> Result<(), StorageError> {
    let mut chars = schema.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid_start && valid_rest && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "`{schema}` is not a usable schema name: use lowercase letters, digits and `_`, starting with a letter \
             or `_`, at most 63 characters"
        )))
    }
}

impl PostgresStorage {
    /// Connects with default options (schema `runekernel`), creating the
    /// schema and running the embedded migrations if needed.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with `options`.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and for an unusable schema name.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StorageError> {
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|e| StorageError::Invalid(format!("`{url}` is not a Postgres URL: {e}")))?;
        Self::open(connect, options).await
    }

    /// Connects to the database of `pool`, an application's own sqlx 0.8
    /// pool, with `options`: the same server, database, user and TLS
    /// settings (the pool's connect options). The storage opens connections
    /// of its own rather than borrowing the pool's, because its connections
    /// carry session settings (`search_path` set to its schema, generic
    /// plans, no bitmap scans) that must not leak into the application's
    /// queries. Submit inside the application's own transactions with
    /// [`insert_in`](Self::insert_in).
    ///
    /// # Errors
    /// As [`connect_with`](Self::connect_with).
    pub async fn from_pool(pool: &PgPool, options: PostgresOptions) -> Result<Self, StorageError> {
        Self::open((*pool.connect_options()).clone(), options).await
    }

    /// Opens the storage on the database `connect` names.
    async fn open(connect: PgConnectOptions, options: PostgresOptions) -> Result<Self, StorageError> {
        check_schema_name(&options.schema)?;
        let schema = options.schema.clone();
        // The schema name was checked above, so it is safe to splice in.
        // Generic plans: with `auto`, Postgres may re-plan the claim and
        // commit statements at every execution (their generic plan's cost
        // estimate looks worse than it is); the generic plans read the same
        // indexes, and are made once per connection.
        // No bitmap scans: a queue's statistics are nearly always wrong
        // (taken while it was empty, or drained), and on the estimate that
        // few jobs are pending the planner fetches every pending job through
        // a bitmap and sorts them all to claim the first few, so a claim
        // costs time in proportion to the backlog. Read in index order, it
        // stops after the jobs it takes.
        let session = format!(
            "SET search_path TO \"{schema}\"; SET plan_cache_mode = force_generic_plan; SET enable_bitmapscan = off"
        );
        let channel = format!("rk_{schema}");
        // The schema is created and migrated on a connection of its own, so
        // that every pooled connection finds the tables and can prepare its
        // statements as it opens.
        {
            let mut bootstrap = PgConnection::connect_with(&connect).await.map_err(backend)?;
            bootstrap
                .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"; {session}").as_str())
                .await
                .map_err(backend)?;
            migrations::migrator()
                .await
                .map_err(|e| StorageError::backend(format!("reading the embedded migrations failed: {e}")))?
                .run(&mut bootstrap)
                .await
                .map_err(|e| StorageError::backend(format!("migrating schema `{schema}` failed: {e}")))?;
            bootstrap.close().await.map_err(backend)?;
        }
        let prepared_on = channel.clone();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .min_connections(options.min_connections.min(options.max_connections))
            .after_connect(move |conn, _meta| {
                let session = session.clone();
                let channel = prepared_on.clone();
                Box::pin(async move {
                    conn.execute(session.as_str()).await?;
                    statements::prepare(conn, &channel).await
                })
            })
            // The check sqlx makes on every take, made only after `PING_IDLE`.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await
            .map_err(backend)?;
        let events = EventBus::new();
        let mut listener = PgListener::connect_with(&pool).await.map_err(backend)?;
        listener.listen(&channel).await.map_err(backend)?;
        let task = tokio::spawn(listen(listener, events.clone()));
        tracing::info!(%schema, "connected to Postgres");
        Ok(PostgresStorage {
            pool,
            events,
            channel,
            app_inserts: std::sync::Arc::new(Inserts::in_schema(&schema)),
            own_inserts: std::sync::Arc::new(Inserts::bare()),
            schema,
            _listener: std::sync::Arc::new(ListenerTask(task)),
        })
    }

    /// The schema this storage uses.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool, for running your own queries next to RuneKernel's.
    /// Its connections have `search_path` set to [`schema`](Self::schema),
    /// `plan_cache_mode` set to `force_generic_plan` (prepared statements are
    /// planned once, not at each execution) and `enable_bitmapscan` off (a
    /// claim reads the ready queue in index order whatever the table's
    /// statistics say).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.pool.begin().await.map_err(backend)
    }

    /// Ends a transaction begun with [`begin`](Self::begin): commits it if
    /// `result` is a success, otherwise rolls it back, before returning
    /// `result`. A dropped sqlx transaction is rolled back only once its
    /// connection is back in the pool, by a task of its own, so its row locks
    /// would outlive the failed call for a moment (and a claim meanwhile
    /// would skip those jobs).
    async fn end<T>(tx: Transaction<'static, Postgres>, result: Result<T, StorageError>) -> Result<T, StorageError> {
        match result {
            Ok(value) => {
                tx.commit().await.map_err(backend)?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(%rollback, "rolling back a failed transaction failed");
                }
                Err(error)
            }
        }
    }

    /// Writes the commits, whose job ids are distinct, in one statement on
    /// `conn`. A commit the statement did not write is judged against its
    /// row as it is now: its error, or, if the row accepts it now (a job
    /// released between the statement and the read), one more go.
    async fn write_commits(
        &self,
        conn: &mut PgConnection,
        commits: &[&Commit],
    ) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        let mut results: Vec<Option<Result<Committed, StorageError>>> = commits.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..commits.len()).collect();
        for _ in 0..2 {
            if pending.is_empty() {
                break;
            }
            let batch: Vec<&Commit> = pending.iter().map(|&i| commits[i]).collect();
            let any_ready = batch.iter().any(|c| c.status() == JobState::Pending);
            let messages = change_messages(batch.iter().map(|c| &c.id), any_ready);
            let columns = CommitColumns::of(&batch);
            let row = columns
                .bind(sqlx::query(COMMIT_JOBS.as_str()))
                .bind(&self.channel)
                .bind(&messages)
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?;
            let ids = |column: &str| -> Result<HashSet<JobId>, StorageError> {
                let ids: Vec<uuid::Uuid> = sqlx::Row::try_get(&row, column).map_err(backend)?;
                Ok(ids.into_iter().map(JobId::from_uuid).collect())
            };
            let done = ids("done")?;
            let cancel = cancel_requests(&row)?;
            let (written, refused): (Vec<usize>, Vec<usize>) =
                pending.into_iter().partition(|&i| done.contains(&commits[i].id));
            for i in written {
                results[i] = Some(Ok(match cancel.get(&commits[i].id) {
                    Some(reason) => Committed {
                        cancel_requested: true,
                        cancel_reason: reason.clone(),
                    },
                    None => Committed::new(false),
                }));
            }
            pending = Vec::new();
            if refused.is_empty() {
                break;
            }
            let uuids: Vec<uuid::Uuid> = refused.iter().map(|&i| *commits[i].id.as_uuid()).collect();
            let rows = sqlx::query(GET_JOBS.as_str())
                .bind(&uuids)
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?;
            let mut now: HashMap<JobId, Result<JobRecord, StorageError>> = rows
                .iter()
                .map(|row| {
                    let id = JobId::from_uuid(sqlx::Row::try_get(row, "id").map_err(backend)?);
                    Ok((id, read_job(row)))
                })
                .collect::<Result<_, StorageError>>()?;
            for i in refused {
                let commit = commits[i];
                match now.remove(&commit.id) {
                    None => results[i] = Some(Err(StorageError::NotFound(commit.id))),
                    Some(Err(error)) => results[i] = Some(Err(error)),
                    Some(Ok(record)) => match record.check_commit(commit) {
                        Err(error) => results[i] = Some(Err(error)),
                        Ok(()) => pending.push(i),
                    },
                }
            }
        }
        Ok(results
            .into_iter()
            .zip(commits)
            .map(|(result, commit)| {
                result.unwrap_or_else(|| {
                    Err(StorageError::backend(format!(
                        "job {}: the commit lost every race with concurrent changes to the job",
                        commit.id
                    )))
                })
            })
            .collect())
    }

    /// Writes each commit on its own statement, in order.
    async fn write_each(
        &self,
        conn: &mut PgConnection,
        commits: &[Commit],
    ) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        let mut results = Vec::with_capacity(commits.len());
        for commit in commits {
            let result = self.write_commits(conn, &[commit]).await;
            results.push(result.and_then(only));
        }
        Ok(results)
    }

    /// Fails job `id`, whose stored row cannot be read: `failed` with the
    /// reason and a lifecycle-only history entry, in one statement; the
    /// payload is left as stored.
    async fn fail_unreadable(&self, id: JobId, reason: &str, now: Millis) -> Result<(), StorageError> {
        tracing::error!(job = %id, message = %reason, "failing a job whose stored row cannot be read");
        let reason = text(reason);
        sqlx::query(
            "WITH failed AS (UPDATE rk_jobs SET status = 'failed', last_error = $2, version = version + 1, \
               updated_at = $3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, \
               cancel_requested = false, cancel_reason = NULL WHERE id = $1 RETURNING id, version, state, attempts) \
             INSERT INTO rk_history (job_id, seq, from_state, to_state, status, error, at, attempt, worker, payload) \
             SELECT id, version, state, state, 'failed', $2, $3, attempts, NULL, 'null'::json FROM failed",
        )
        .bind(id.as_uuid())
        .bind(reason.as_ref())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        self.events.send(StorageEvent::JobChanged(id));
        Ok(())
    }

    /// Locks the jobs (in id order, so concurrent batches cannot deadlock).
    async fn lock_jobs(
        tx: &mut Transaction<'static, Postgres>,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, JobRecord>, StorageError> {
        let mut uuids: Vec<uuid::Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
        uuids.sort();
        uuids.dedup();
        let rows = sqlx::query(LOCK_JOBS.as_str())
            .bind(&uuids)
            .fetch_all(&mut **tx)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| read_job(row).map(|r| (r.id, r))).collect()
    }

    /// Writes the mutable columns of every record in one statement.
    async fn write_jobs(tx: &mut Transaction<'static, Postgres>, records: &[&JobRecord]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut c = JobColumns::default();
        for r in records {
            c.push(r);
        }
        c.bind(sqlx::query(WRITE_JOBS.as_str()))
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Locks one job and runs a lease operation on it; writes it back.
    async fn with_lease<T>(
        &self,
        id: JobId,
        lease: LeaseToken,
        now: Millis,
        f: impl FnOnce(&mut JobRecord) -> T,
    ) -> Result<T, StorageError> {
        let mut tx = self.begin().await?;
        let result = async {
            let mut jobs = Self::lock_jobs(&mut tx, &[id]).await?;
            let record = jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
            record.check_lease(lease, now)?;
            let out = f(record);
            Self::write_jobs(&mut tx, &[record]).await?;
            Ok((out, jobs))
        }
        .await;
        let (out, _) = Self::end(tx, result).await?;
        Ok(out)
    }

    /// Inserts jobs, returning for each its id and whether it is new. Jobs
    /// with an idempotency key already stored are not inserted again.
    async fn insert_jobs(&self, jobs: &[NewJob]) -> Result<Vec<Inserted>, StorageError> {
        jobs.iter().try_for_each(NewJob::check)?;
        let keys: Vec<String> = jobs.iter().filter_map(|j| j.idempotency_key.clone()).collect();
        if keys.is_empty() {
            let all: Vec<&NewJob> = jobs.iter().collect();
            self.insert_new(&self.pool, &self.own_inserts, &all).await?;
            return Ok(jobs
                .iter()
                .map(|j| Inserted {
                    id: j.id,
                    created: true,
                })
                .collect());
        }
        // The keys are looked up and the new jobs written in one transaction.
        let mut tx = self.begin().await?;
        let result = self.insert_keyed(&mut tx, &self.own_inserts, jobs, &keys).await;
        Self::end(tx, result).await
    }

    /// Inserts jobs through `conn`, a connection of the application's own
    /// (from its own sqlx 0.8 pool), usually inside its own transaction:
    /// pass `&mut *tx`. The jobs then exist if and only if that transaction
    /// commits, and every runtime on this storage's schema is told of them
    /// when it does (Postgres delivers `NOTIFY` at commit). The statements
    /// name the tables in this storage's schema, so the connection's
    /// `search_path` does not matter. Otherwise as
    /// [`insert_batch`](Storage::insert_batch), idempotency keys included;
    /// within a transaction, the key lookup and the insert are atomic.
    ///
    /// Make a typed job with `Runtime::prepare_job` (in `runekernel`).
    ///
    /// # Errors
    /// As [`insert_batch`](Storage::insert_batch); the application's
    /// transaction is then usually to be rolled back.
    pub async fn insert_in(&self, conn: &mut PgConnection, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        jobs.iter().try_for_each(NewJob::check)?;
        let mut seen = HashSet::with_capacity(jobs.len());
        if let Some(dup) = jobs.iter().find(|j| !seen.insert(j.id)) {
            return Err(StorageError::DuplicateId(dup.id));
        }
        let keys: Vec<String> = jobs.iter().filter_map(|j| j.idempotency_key.clone()).collect();
        self.insert_keyed(conn, &self.app_inserts, &jobs, &keys).await
    }

    /// Inserts through `conn` every job but those whose idempotency key
    /// (one of `keys`) is stored already or taken by an earlier job of the
    /// batch, with the statements `sql`.
    async fn insert_keyed(
        &self,
        conn: &mut PgConnection,
        sql: &Inserts,
        jobs: &[NewJob],
        keys: &[String],
    ) -> Result<Vec<Inserted>, StorageError> {
        let rows: Vec<(String, uuid::Uuid)> = sqlx::query_as(&sql.keys)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        let mut known: HashMap<String, JobId> = rows.into_iter().map(|(k, id)| (k, JobId::from_uuid(id))).collect();
        let mut out = Vec::with_capacity(jobs.len());
        let mut fresh: Vec<&NewJob> = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(existing) = job.idempotency_key.as_ref().and_then(|k| known.get(k)) {
                out.push(Inserted {
                    id: *existing,
                    created: false,
                });
                continue;
            }
            if let Some(key) = &job.idempotency_key {
                known.insert(key.clone(), job.id);
            }
            fresh.push(job);
            out.push(Inserted {
                id: job.id,
                created: true,
            });
        }
        if !fresh.is_empty() {
            self.insert_new(&mut *conn, sql, &fresh).await?;
        }
        Ok(out)
    }

    /// Inserts new jobs with their submission entries and announces them, in
    /// one statement.
    async fn insert_new<'e>(
        &self,
        executor: impl Executor<'e, Database = Postgres>,
        sql: &Inserts,
        jobs: &[&NewJob],
    ) -> Result<(), StorageError> {
        let columns = NewJobColumns::of(jobs);
        sql.insert_new(&columns, &self.channel)
            .execute(executor)
            .await
            .map(|_| ())
            .map_err(|error| insert_error(error, jobs))
    }
}

/// The jobs of a [`COMMIT_JOBS`](statements::COMMIT_JOBS) answer whose
/// cancellation is requested, each with its request's reason.
fn cancel_requests(row: &sqlx::postgres::PgRow) -> Result<HashMap<JobId, Option<String>>, StorageError> {
    let ids: Vec<uuid::Uuid> = sqlx::Row::try_get(row, "cancel_requested").map_err(backend)?;
    let reasons: Vec<Option<String>> = sqlx::Row::try_get(row, "cancel_reasons").map_err(backend)?;
    if ids.len() != reasons.len() {
        return Err(StorageError::backend(
            "a commit's answer lists a different number of cancellation requests and reasons",
        ));
    }
    Ok(ids.into_iter().map(JobId::from_uuid).zip(reasons).collect())
}

/// Maps a failed insert: a duplicate id or a key race are conflicts the
/// caller can act on; anything else is a backend error.
fn insert_error(error: sqlx::Error, jobs: &[&NewJob]) -> StorageError {
    if let Some(db) = error.as_database_error() {
        if db.is_unique_violation() {
            if db.constraint() == Some("rk_jobs_pkey") {
                // Postgres names the key in the detail (`Key (id)=(...)
                // already exists.`); find which id it is.
                let detail = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(sqlx::postgres::PgDatabaseError::detail)
                    .unwrap_or_default();
                let id = jobs
                    .iter()
                    .map(|j| j.id)
                    .find(|id| detail.contains(&id.to_string()))
                    .or_else(|| jobs.first().map(|j| j.id))
                    .unwrap_or(JobId::from_u128(0));
                return StorageError::DuplicateId(id);
            }
            return StorageError::Invalid(format!(
                "another process inserted a job with the same idempotency key at the same moment; retry: {}",
                db.message()
            ));
        }
    }
    backend(error)
}

/// Relays NOTIFY messages to local subscribers. After a reconnect, missed
/// messages are made up for with a `JobsReady`.
async fn listen(mut listener: PgListener, events: EventBus) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                for part in notification.payload().split(',') {
                    match part {
                        "ready" => events.send(StorageEvent::JobsReady),
                        id => {
                            if let Ok(id) = id.parse::<JobId>() {
                                events.send(StorageEvent::JobChanged(id));
                            }
                        }
                    }
                }
            }
            Ok(None) => {
                tracing::warn!("the Postgres LISTEN connection was lost; reconnecting");
                events.send(StorageEvent::JobsReady);
            }
            Err(error) => {
                tracing::warn!(%error, "Postgres LISTEN failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Whether `error` is the database refusing a statement (a value it cannot
/// store, a constraint), rather than a lost connection or a timeout, which
/// would fail each commit of the batch again one by one.
fn is_refused_statement(error: &StorageError) -> bool {
    match error {
        StorageError::Backend(source) => source
            .downcast_ref::<sqlx::Error>()
            .is_some_and(|e| matches!(e, sqlx::Error::Database(_))),
        _ => false,
    }
}

/// NOTIFY payloads for changed jobs: comma-separated ids, well under the
/// 8000-byte payload limit per message.
fn change_messages<'a>(ids: impl Iterator<Item = &'a JobId>, any_pending: bool) -> Vec<String> {
    let ids: Vec<String> = ids.map(ToString::to_string).collect();
    let mut messages: Vec<String> = ids.chunks(100).map(|chunk| chunk.join(",")).collect();
    if any_pending {
        messages.push("ready".to_owned());
    }
    messages
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError> {
        let inserted = self.insert_jobs(std::slice::from_ref(&job)).await?;
        inserted
            .into_iter()
            .next()
            .ok_or_else(|| StorageError::backend("insert returned no result"))
    }

    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = std::collections::HashSet::with_capacity(jobs.len());
        if let Some(dup) = jobs.iter().find(|j| !seen.insert(j.id)) {
            return Err(StorageError::DuplicateId(dup.id));
        }
        self.insert_jobs(&jobs).await
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        let row = sqlx::query(GET_JOB.as_str())
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(read_job).transpose()
    }

    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError> {
        let statement = match order {
            ListOrder::OldestFirst => LIST_JOBS.as_str(),
            ListOrder::NewestFirst => LIST_JOBS_NEWEST.as_str(),
        };
        let rows = sqlx::query(statement)
            .bind(after.map(|a| *a.as_uuid()))
            .bind(&filter.machine)
            .bind(&filter.state)
            .bind(filter.status.map(JobState::as_str))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
            .bind(&filter.queue)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let jobs = rows.iter().map(read_job).collect::<Result<Vec<_>, _>>()?;
        Ok(JobPage::from_fetched(jobs, limit))
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        if request.limit == 0 || request.machines.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(CLAIM_JOBS.as_str())
            .bind(request.now)
            .bind(&request.machines)
            .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .bind(text(&request.worker).as_ref())
            .bind(i64::try_from(request.lease_ms).unwrap_or(i64::MAX))
            .bind(&request.queue)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            match read_job(row) {
                Ok(job) => jobs.push(job),
                // Leased by this claim, but unreadable: failed alone, so the
                // rest of the batch runs and no claim trips on it again.
                Err(StorageError::Corrupt { id, message }) => self.fail_unreadable(id, &message, request.now).await?,
                Err(other) => return Err(other),
            }
        }
        jobs.sort_by_key(|j| (j.priority, j.run_at, j.id));
        Ok(jobs)
    }

    async fn claim_job(
        &self,
        id: JobId,
        worker: &str,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Option<JobRecord>, StorageError> {
        let mut tx = self.begin().await?;
        let result = async {
            let mut jobs = Self::lock_jobs(&mut tx, &[id]).await?;
            let record = jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
            if record.status != JobState::Pending && !record.is_claimable(now) {
                return Ok(None);
            }
            let token: i64 = sqlx::query_scalar("SELECT nextval('rk_lease_tokens')")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            record.claim(worker, LeaseToken(token.cast_unsigned()), now, lease_ms);
            Self::write_jobs(&mut tx, &[record]).await?;
            Ok(jobs.remove(&id))
        }
        .await;
        let claimed = Self::end(tx, result).await?;
        Ok(claimed)
    }

    async fn commit(&self, commit: Commit) -> Result<JobRecord, StorageError> {
        // In one transaction, so the job read back is the one written (the
        // update's row lock keeps claims away until the end).
        let mut tx = self.begin().await?;
        let result = async {
            only(self.write_commits(&mut tx, &[&commit]).await?)?;
            let row = sqlx::query(GET_JOB.as_str())
                .bind(commit.id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            row.as_ref()
                .map(read_job)
                .transpose()?
                .ok_or(StorageError::NotFound(commit.id))
        }
        .await;
        Self::end(tx, result).await
    }

    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let mut ids = HashSet::with_capacity(commits.len());
        let distinct = commits.iter().all(|c| ids.insert(c.id));
        let all: Vec<&Commit> = commits.iter().collect();
        match self.write_commits(&mut conn, &all).await {
            // The database refused the statement (a value one of its rows
            // cannot store), or two commits are for one job: each commit
            // goes on its own, so that the bad one fails alone rather than
            // every job of the batch being retried after its lease.
            Err(error) if commits.len() > 1 && is_refused_statement(&error) => {
                tracing::warn!(%error, commits = commits.len(), "a commit batch was refused; committing it job by job");
                self.write_each(&mut conn, commits).await
            }
            _ if !distinct => self.write_each(&mut conn, commits).await,
            together => together,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new().batched_commits().concurrent_claims()
    }

    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT seq, from_state, to_state, status, error, at, attempt, worker, payload \
             FROM rk_history WHERE job_id = $1 ORDER BY seq",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|row| rows::read_history(id, row)).collect()
    }

    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        // One statement: each lease still held is extended; the rest are
        // lost (or their job is gone).
        let expires_at = crate::model::add_ms(now, lease_ms);
        let ids: Vec<uuid::Uuid> = leases.iter().map(|(id, _)| *id.as_uuid()).collect();
        let tokens: Vec<i64> = leases.iter().map(|(_, token)| token.0.cast_signed()).collect();
        let rows = sqlx::query(EXTEND_LEASES)
            .bind(&ids)
            .bind(&tokens)
            .bind(expires_at)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut extended = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id = JobId::from_uuid(sqlx::Row::try_get(row, "id").map_err(backend)?);
            let cancel_requested: bool = sqlx::Row::try_get(row, "cancel_requested").map_err(backend)?;
            extended.insert(id, cancel_requested);
        }
        Ok(leases
            .into_iter()
            .map(|(id, token)| match extended.get(&id) {
                Some(&cancel_requested) => Ok(Heartbeat {
                    expires_at,
                    cancel_requested,
                }),
                None => Err(StorageError::LeaseLost { id, token }),
            })
            .collect())
    }

    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError> {
        self.with_lease(id, lease, now, |record| record.release(now)).await?;
        self.events.send(StorageEvent::JobsReady);
        Ok(())
    }

    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError> {
        let mut tx = self.begin().await?;
        let result = async {
            let mut jobs = Self::lock_jobs(&mut tx, &[id]).await?;
            let record = jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
            let outcome = match record.status {
                JobState::Pending => {
                    let commit = cancel_commit(record, now, reason);
                    let committed = only(self.write_commits(&mut tx, &[&commit]).await?)?;
                    record.committed(commit, committed);
                    CancelOutcome::Cancelled(Box::new(record.clone()))
                }
                JobState::Running => {
                    record.request_cancel(reason);
                    Self::write_jobs(&mut tx, &[record]).await?;
                    CancelOutcome::Requested
                }
                finished => CancelOutcome::AlreadyFinished(finished),
            };
            Ok(outcome)
        }
        .await;
        Self::end(tx, result).await
    }

    async fn counts(&self) -> Result<Vec<CountRow>, StorageError> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT machine, queue, state, status, COUNT(*) FROM rk_jobs GROUP BY machine, queue, state, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = rows
            .into_iter()
            .map(|(machine, queue, state, status, count)| {
                let status = status
                    .parse::<JobState>()
                    .map_err(|e| StorageError::backend(e.to_string()))?;
                Ok(CountRow {
                    machine,
                    queue,
                    state,
                    status,
                    count: count.cast_unsigned(),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        out.sort();
        Ok(out)
    }

    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError> {
        let mut tx = self.begin().await?;
        let result = async {
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM rk_jobs WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            let status = status
                .ok_or(StorageError::NotFound(id))?
                .parse::<JobState>()
                .map_err(|e| StorageError::Corrupt {
                    id,
                    message: e.to_string(),
                })?;
            if !status.is_finished() {
                return Ok(DeleteOutcome::NotFinished(status));
            }
            for statement in [
                "DELETE FROM rk_history WHERE job_id = $1",
                "DELETE FROM rk_jobs WHERE id = $1",
            ] {
                sqlx::query(statement)
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            Ok(DeleteOutcome::Deleted)
        }
        .await;
        let outcome = Self::end(tx, result).await?;
        if outcome == DeleteOutcome::Deleted {
            self.events.send(StorageEvent::JobChanged(id));
        }
        Ok(outcome)
    }

    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError> {
        status.expect_finished()?;
        // The status is written into the statement, so the planner sees it
        // matches the finished-jobs index; it is one of three fixed names.
        let sql = format!(
            "WITH gone AS (DELETE FROM rk_jobs WHERE id IN (SELECT id FROM rk_jobs WHERE status = '{status}' \
                  AND updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id), \
             history AS (DELETE FROM rk_history WHERE job_id IN (SELECT id FROM gone)) \
             SELECT count(*) FROM gone",
            status = status.as_str()
        );
        let deleted: i64 = sqlx::query_scalar(&sql)
            .bind(before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(deleted.cast_unsigned())
    }

    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError> {
        let taken = sqlx::query(
            "INSERT INTO rk_duties (name, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE rk_duties.owner = excluded.owner OR rk_duties.expires_at <= $4",
        )
        .bind(text(duty).as_ref())
        .bind(text(owner).as_ref())
        .bind(crate::model::add_ms(now, ttl_ms))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError> {
        let queue = text(queue);
        if paused {
            let inserted = sqlx::query("INSERT INTO rk_paused_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(queue.as_ref())
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            return Ok(inserted.rows_affected() == 0);
        }
        // Resumed: every process sharing the schema is told there is work.
        let (deleted, _notified): (i64, i64) = sqlx::query_as(
            "WITH resumed AS (DELETE FROM rk_paused_queues WHERE queue = $1 RETURNING queue), \
             notified AS (SELECT pg_notify($2, 'ready') WHERE EXISTS (SELECT 1 FROM resumed)) \
             SELECT (SELECT count(*) FROM resumed), (SELECT count(*) FROM notified)",
        )
        .bind(queue.as_ref())
        .bind(&self.channel)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StorageError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT queue FROM rk_paused_queues")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut queues: Vec<String> = rows.into_iter().map(|(queue,)| queue).collect();
        queues.sort();
        Ok(queues)
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
    use super::statements::{INSERT_NEW, INSERT_NEW_BY};
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("runekernel").is_ok());
        assert!(check_schema_name("_app_2").is_ok());
        for bad in [
            "",
            "Upper",
            "1st",
            "with-dash",
            "x\"; DROP TABLE y; --",
            &"a".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    /// The highest `$n` in `sql`.
    fn parameters(sql: &str) -> usize {
        sql.split('$')
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// A storage in a fresh schema (named from `prefix`, dropped with the
    /// returned guard) holding 20k pending jobs, the size of a real backlog;
    /// `None` without a database.
    #[cfg(feature = "testing")]
    async fn with_backlog(prefix: &str) -> Option<(crate::testing::postgres::TestSchemas, PostgresStorage)> {
        use crate::testing::postgres::{database_url, TestSchemas};
        let url = database_url()?;
        let schemas = TestSchemas::new(&url);
        let schema = schemas.fresh(prefix);
        let storage = PostgresStorage::connect_with(&url, PostgresOptions::default().schema(&schema))
            .await
            .unwrap();
        for chunk in 0..20 {
            let jobs = (0..1000)
                .map(|n| crate::testing::new_job("m", chunk * 1000 + n))
                .collect();
            storage.insert_batch(jobs).await.unwrap();
        }
        Some((schemas, storage))
    }

    /// Prepares `sql` as `name` on `conn` and returns its generic plan.
    #[cfg(feature = "testing")]
    async fn generic_plan(conn: &mut sqlx_postgres::PgConnection, name: &str, sql: &str) -> String {
        conn.execute(format!("PREPARE {name} AS {sql}").as_str()).await.unwrap();
        let nulls = vec!["NULL"; parameters(sql)].join(", ");
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE {name}({nulls})"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        plan.join("\n")
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn a_claim_reads_the_ready_queue_in_order_whatever_the_statistics_say() {
        let Some((_schemas, storage)) = with_backlog("rk_stale_stats").await else {
            return;
        };
        // The table was never analyzed: the planner guesses that few jobs
        // are pending, as it does from statistics taken while the queue was
        // drained.
        let mut conn = storage.pool().acquire().await.unwrap();
        let plan = generic_plan(&mut conn, "claim_jobs", CLAIM_JOBS.as_str()).await;
        assert!(
            plan.contains("Index Scan using rk_jobs_ready"),
            "the claim does not read the ready queue in index order:\n{plan}"
        );
        assert!(!plan.contains("Bitmap"), "the claim fetches the whole backlog:\n{plan}");
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn the_hot_statements_generic_plans_read_indexes() {
        let Some((_schemas, storage)) = with_backlog("rk_plans").await else {
            return;
        };
        let mut conn = storage.pool().acquire().await.unwrap();
        conn.execute("ANALYZE").await.unwrap();
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(
            mode, "force_generic_plan",
            "so EXPLAIN EXECUTE shows the plans the storage runs"
        );
        let hot = [
            ("claim_jobs", CLAIM_JOBS.as_str()),
            ("get_jobs", GET_JOBS.as_str()),
            ("lock_jobs", LOCK_JOBS.as_str()),
            ("write_jobs", WRITE_JOBS.as_str()),
            ("commit_jobs", COMMIT_JOBS.as_str()),
            ("extend_leases", EXTEND_LEASES),
            ("insert_new", INSERT_NEW.as_str()),
            ("insert_new_by", INSERT_NEW_BY.as_str()),
        ];
        for (name, sql) in hot {
            let plan = generic_plan(&mut conn, name, sql).await;
            assert!(!plan.contains("Seq Scan on rk_jobs"), "{name} scans every job:\n{plan}");
        }
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn every_pooled_connection_opens_with_the_hot_statements_prepared_and_announces_nothing() {
        use crate::testing::postgres::{database_url, TestSchemas};
        let Some(url) = database_url() else { return };
        let schemas = TestSchemas::new(&url);
        let schema = schemas.fresh("rk_prepared");
        let channel = format!("rk_{schema}");
        let mut heard = sqlx_postgres::PgListener::connect(&url).await.unwrap();
        heard.listen(&channel).await.unwrap();
        let storage = PostgresStorage::connect_with(&url, PostgresOptions::default().schema(&schema))
            .await
            .unwrap();
        // Two at once: at least one was opened for this test.
        let mut first = storage.pool().acquire().await.unwrap();
        let mut second = storage.pool().acquire().await.unwrap();
        for conn in [&mut first, &mut second] {
            let prepared: Vec<String> = sqlx::query_scalar("SELECT statement FROM pg_prepared_statements")
                .fetch_all(&mut **conn)
                .await
                .unwrap();
            for (name, sql) in [
                ("claim", CLAIM_JOBS.as_str()),
                ("insert", INSERT_NEW.as_str()),
                ("commit", COMMIT_JOBS.as_str()),
            ] {
                assert!(
                    prepared.iter().any(|p| p == sql),
                    "the {name} is not prepared: {prepared:?}"
                );
            }
        }
        // Notifications arrive in commit order: one sent while the
        // connections were readied would come before this one.
        sqlx::query("SELECT pg_notify($1, 'marker')")
            .bind(&channel)
            .execute(&mut *first)
            .await
            .unwrap();
        let notification = heard.recv().await.unwrap();
        assert_eq!(notification.payload(), "marker");
        assert!(
            storage.counts().await.unwrap().is_empty(),
            "readying a connection stored a job"
        );
    }
}

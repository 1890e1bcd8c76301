//! apalis 1.0's side of each workload: the same jobs, N, worker count and
//! machine as RuneKernel's side in `workloads.rs`.
//!
//! apalis runs the set-up its documentation recommends for low latency: the
//! SQLite update hook or Postgres `LISTEN/NOTIFY` wakes the worker, with
//! polling as the fallback. It fetches in batches of RuneKernel's claim batch
//! and runs [`WORKERS`] tasks at once ([`Tuning::SAME`]); the burn-down also
//! runs it tuned as [`Tuning::SWEEP`] says, to compare with apalis at its
//! best. Its SQLite connections get the same
//! `synchronous` setting as the RuneKernel row they are compared with (apalis's
//! own `setup` turns it off on the one connection it runs on). apalis has no
//! multi-state job, so a three-step job is a chain: each step's handler pushes
//! the next step as a new task, as apalis-workflow's stepped flows do.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use futures::channel::mpsc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteOperation, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, PgPool, SqlitePool};

use crate::machines::Counter;
use crate::workloads::{rss, CLAIM_BATCH, WARM_CONNECTIONS, WORKERS};

/// One step of a job: single-step jobs start at `C`, three-step jobs at `A`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Step {
    /// First of three.
    A(u64),
    /// Second of three.
    B(u64),
    /// The last step of every job.
    C(u64),
}

/// How apalis's worker is tuned: tasks run at once, and tasks fetched per
/// poll of its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Tasks at once (`WorkerBuilder::concurrency`).
    pub concurrency: usize,
    /// Tasks per fetch (the storage config's `batch_size`).
    pub fetch: usize,
}

impl Tuning {
    /// RuneKernel's own configuration: its workers and its claim batch.
    pub const SAME: Tuning = Tuning {
        concurrency: WORKERS,
        fetch: CLAIM_BATCH,
    };

    /// The tunings a burn-down runs apalis with: the same as RuneKernel's,
    /// then more tasks at once and larger fetches.
    pub const SWEEP: [Tuning; 3] = [
        Tuning::SAME,
        Tuning {
            concurrency: 256,
            fetch: 1000,
        },
        Tuning {
            concurrency: 1000,
            fetch: 1000,
        },
    ];

    /// Postgres connections for this many tasks at once: a quarter of
    /// them, from the same configuration's 16 up to 64 (well under the
    /// server's 100).
    fn connections(self) -> u32 {
        u32::try_from((self.concurrency / 4).clamp(WORKERS / 4, 64)).unwrap_or(64)
    }
}

impl std::fmt::Display for Tuning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.concurrency, self.fetch)
    }
}

/// Where apalis runs.
#[derive(Clone, Copy)]
pub enum Peer<'a> {
    /// `MemoryStorage`.
    Memory,
    /// `SqliteStorage` on a file, `synchronous=FULL` or `OFF`.
    Sqlite { path: &'a Path, sync_off: bool },
    /// `PostgresStorage` in a database of its own, created under `url`.
    Postgres { url: &'a str },
}

/// How a handler enqueues the next step of its job.
#[derive(Clone)]
enum Next {
    Memory(mpsc::UnboundedSender<Task<Step>>),
    Sqlite(SqliteStorage<Step>),
    Postgres(PostgresStorage<Step>),
}

impl Next {
    async fn push_all(&self, steps: Vec<Step>) -> Result<(), BoxDynError> {
        match self {
            Next::Memory(tx) => {
                for step in steps {
                    tx.unbounded_send(Task::new(step))?;
                }
                Ok(())
            }
            Next::Sqlite(storage) => Ok(storage.clone().push_bulk(steps).await?),
            Next::Postgres(storage) => Ok(storage.clone().push_bulk(steps).await?),
        }
    }
}

/// What every handler shares: where to push, how many steps ran and how
/// many jobs ran their last step.
#[derive(Clone)]
struct Shared {
    next: Next,
    steps: Arc<AtomicU64>,
    finished: Counter,
}

/// The handler: a no-op step that enqueues the next one, if any.
async fn run_step(step: Step, shared: Data<Shared>) -> Result<(), BoxDynError> {
    shared.steps.fetch_add(1, Ordering::Relaxed);
    let next = match step {
        Step::A(n) => Step::B(n),
        Step::B(n) => Step::C(n),
        Step::C(_) => {
            shared.finished.bump();
            return Ok(());
        }
    };
    shared.next.push_all(vec![next]).await
}

/// The backend apalis's worker polls, before it starts.
enum Source {
    Memory(MemoryStorage<Step>),
    Sqlite(SqliteStorage<Step>, mpsc::UnboundedReceiver<()>),
    Postgres(PostgresStorage<Step>),
}

/// An opened apalis store, not yet worked.
struct Store {
    next: Next,
    source: Source,
    sql: Sql,
    tuning: Tuning,
}

/// The SQL side of a store, to count finished tasks and clean up.
enum Sql {
    None,
    Sqlite(SqlitePool),
    Postgres {
        pool: PgPool,
        admin: PgPool,
        database: String,
    },
}

/// A worker running in the background until `stop` is sent.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    worker: tokio::task::JoinHandle<Result<(), WorkerError>>,
    steps: Arc<AtomicU64>,
    finished: Counter,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        match self.worker.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("apalis worker: {e}"),
            Err(e) => eprintln!("apalis worker: {e}"),
        }
    }
}

/// Builds the worker for one kind of backend and runs it until `stop`.
macro_rules! spawn_worker {
    ($backend:expr, $shared:expr, $concurrency:expr) => {{
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = WorkerBuilder::new("rk-bench")
            .backend($backend)
            .data($shared)
            .concurrency($concurrency)
            .build(run_step);
        let worker = tokio::spawn(worker.run_until(async move {
            let _ = stopped.await;
            Ok::<(), WorkerError>(())
        }));
        (stop, worker)
    }};
}

/// The queue every workload uses.
const QUEUE: &str = "rk-bench";

impl Store {
    async fn open(peer: Peer<'_>, tuning: Tuning) -> Result<Store, BoxDynError> {
        match peer {
            Peer::Memory => {
                let (tx, rx) = mpsc::unbounded::<Task<Step>>();
                let storage = MemoryStorage::new_with(memory_sink(tx.clone()), rx.boxed());
                Ok(Store {
                    next: Next::Memory(tx),
                    source: Source::Memory(storage),
                    sql: Sql::None,
                    tuning,
                })
            }
            Peer::Sqlite { path, sync_off } => {
                let url = format!("sqlite://{}?mode=rwc", path.display());
                // apalis's setup sets its own pragmas on the connection it
                // runs on; the measured pool is opened afterwards.
                let setup = SqlitePool::connect(&url).await?;
                SqliteStorage::setup(&setup).await?;
                setup.close().await;
                let synchronous = if sync_off {
                    SqliteSynchronous::Off
                } else {
                    SqliteSynchronous::Full
                };
                let options = SqliteConnectOptions::from_str(&url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .busy_timeout(Duration::from_secs(30));
                let (wake, woken) = mpsc::unbounded::<()>();
                let pool = SqlitePoolOptions::new()
                    .after_connect(move |conn, _| {
                        let wake = wake.clone();
                        Box::pin(async move {
                            let mut handle = conn.lock_handle().await?;
                            handle.set_update_hook(move |event| {
                                if event.operation == SqliteOperation::Insert && event.table == "Jobs" {
                                    let _ = wake.unbounded_send(());
                                }
                            });
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                let config = apalis_sqlite::Config::default().queue(QUEUE).batch_size(tuning.fetch);
                let storage = SqliteStorage::new(&pool).with_config(config);
                Ok(Store {
                    next: Next::Sqlite(storage.clone()),
                    source: Source::Sqlite(storage, woken),
                    sql: Sql::Sqlite(pool),
                    tuning,
                })
            }
            Peer::Postgres { url } => {
                static NEXT_DB: AtomicU64 = AtomicU64::new(0);
                let database = format!(
                    "rk_bench_apalis_{}_{}",
                    std::process::id(),
                    NEXT_DB.fetch_add(1, Ordering::Relaxed)
                );
                let admin = PgPool::connect(url).await?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{database}\"")))
                    .await?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(tuning.connections())
                    .min_connections(WARM_CONNECTIONS)
                    .connect(&with_database(url, &database))
                    .await?;
                PostgresStorage::setup(&pool).await?;
                let config = apalis_postgres::Config::default().queue(QUEUE).batch_size(tuning.fetch);
                let storage = PostgresStorage::new(&pool).with_config(config);
                Ok(Store {
                    next: Next::Postgres(storage.clone()),
                    source: Source::Postgres(storage),
                    sql: Sql::Postgres { pool, admin, database },
                    tuning,
                })
            }
        }
    }

    /// Starts a worker on the store.
    fn start(self) -> (Running, Sql) {
        let (steps, finished) = (Arc::new(AtomicU64::new(0)), Counter::default());
        let shared = Shared {
            next: self.next,
            steps: steps.clone(),
            finished: finished.clone(),
        };
        let fallback = Duration::from_millis(100);
        let Tuning { concurrency, fetch } = self.tuning;
        let (stop, worker) = match self.source {
            Source::Memory(storage) => spawn_worker!(storage, shared, concurrency),
            Source::Sqlite(storage, woken) => {
                let strategy = Strategy::new().stream(woken.ready_chunks(fetch)).interval(fallback);
                spawn_worker!(storage.poll_with_strategy(strategy), shared, concurrency)
            }
            Source::Postgres(storage) => {
                let storage = storage.with_pubsub();
                spawn_worker!(storage, shared, concurrency)
            }
        };
        (
            Running {
                stop,
                worker,
                steps,
                finished,
            },
            self.sql,
        )
    }
}

impl Sql {
    /// Tasks whose completion is committed, where apalis stores it.
    async fn done(&self) -> Result<Option<u64>, BoxDynError> {
        let count: i64 = match self {
            Sql::None => return Ok(None),
            Sql::Sqlite(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE status = 'Done'")
                    .fetch_one(pool)
                    .await?
            }
            Sql::Postgres { pool, .. } => {
                sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(Some(count as u64))
    }

    async fn close(self) {
        match self {
            Sql::None => {}
            Sql::Sqlite(pool) => pool.close().await,
            Sql::Postgres { pool, admin, database } => {
                pool.close().await;
                let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                if let Err(e) = admin.execute(sqlx::AssertSqlSafe(drop)).await {
                    eprintln!("could not drop {database}: {e}");
                }
            }
        }
    }
}

/// `MemoryStorage`'s sink over our own channel, so handlers can push too.
fn memory_sink(tx: mpsc::UnboundedSender<Task<Step>>) -> MemorySink<Step> {
    use futures::SinkExt;
    let sink: Box<dyn futures::Sink<Task<Step>, Error = MemoryStorageError> + Send + Sync + Unpin> =
        Box::new(tx.sink_map_err(MemoryStorageError::from));
    MemorySink::new(Arc::new(futures::lock::Mutex::new(sink)))
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(head, _)| head);
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Pushes `steps` in batches of 1000.
async fn preload(next: &Next, steps: impl Iterator<Item = Step>) -> Result<(), BoxDynError> {
    let steps: Vec<Step> = steps.collect();
    for chunk in steps.chunks(1000) {
        next.push_all(chunk.to_vec()).await?;
    }
    Ok(())
}

/// A burn-down's result.
pub struct BurnDown {
    /// Steps per second (jobs per second for single-step jobs).
    pub steps_per_second: f64,
    /// Jobs that ran to their end: fewer than N if the time budget ran out,
    /// and then `steps_per_second` is over the steps that ran.
    pub ran: u64,
}

/// Runs `n` pre-inserted jobs to completion, or until `budget` is spent,
/// with apalis tuned as `tuning` says.
pub async fn burn_down(
    peer: Peer<'_>,
    n: u64,
    three_steps: bool,
    budget: Duration,
    tuning: Tuning,
) -> Result<BurnDown, BoxDynError> {
    let store = Store::open(peer, tuning).await?;
    let first = |i| if three_steps { Step::A(i) } else { Step::C(i) };
    preload(&store.next, (0..n).map(first)).await?;
    let tasks = if three_steps { 3 * n } else { n };
    let started = Instant::now();
    let (running, sql) = store.start();
    let in_budget = || started.elapsed() <= budget;
    running
        .finished
        .reached(n, tokio::time::Instant::from_std(started) + budget)
        .await;
    // The last handlers have returned; wait for their acknowledgements.
    while in_budget() && sql.done().await?.is_some_and(|done| done < tasks) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let ran = running.finished.get();
    let steps = running.steps.load(Ordering::Relaxed);
    running.stop().await;
    sql.close().await;
    Ok(BurnDown {
        steps_per_second: steps as f64 / elapsed.as_secs_f64(),
        ran,
    })
}

/// Submits `n` jobs with `push_bulk`, 1000 at a time; returns jobs per second.
pub async fn bulk_submit(peer: Peer<'_>, n: u64) -> Result<f64, BoxDynError> {
    let store = Store::open(peer, Tuning::SAME).await?;
    let started = Instant::now();
    preload(&store.next, (0..n).map(Step::C)).await?;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    store.sql.close().await;
    Ok(rate)
}

/// Submit-to-start latency on an idle worker: `samples` single tasks, each
/// pushed once the previous one started. Returns (p50, p99) in ms.
pub async fn latency(peer: Peer<'_>, samples: usize) -> Result<(f64, f64), BoxDynError> {
    let store = Store::open(peer, Tuning::SAME).await?;
    let next = store.next.clone();
    let (running, sql) = store.start();
    // Let the worker register and go idle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples as u64 {
        let before = running.finished.get();
        let started = Instant::now();
        next.push_all(vec![Step::C(i)]).await?;
        let ran = running
            .finished
            .ran_after(before, Duration::from_secs(30))
            .await
            .ok_or("a task did not start within 30 s")?;
        latencies.push(ran.duration_since(started).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;
    sql.close().await;
    Ok(crate::workloads::percentiles(latencies))
}

/// Bytes of resident memory per pending task in `MemoryStorage`.
pub async fn memory_per_job(n: u64) -> Result<f64, BoxDynError> {
    let before = rss();
    let store = Store::open(Peer::Memory, Tuning::SAME).await?;
    preload(&store.next, (0..n).map(Step::C)).await?;
    let after = rss();
    drop(store);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

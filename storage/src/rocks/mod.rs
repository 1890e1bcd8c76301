//! [`RocksDbStorage`]: jobs in an embedded RocksDB (an LSM tree), for high
//! write throughput on one machine without SQL.
//!
//! Every operation is one *optimistic transaction*: it reads the keys it
//! depends on with `get_for_update`, writes into the transaction's batch,
//! and commits atomically, or is retried from scratch when another
//! transaction changed one of those keys first. Optimistic rather than
//! pessimistic (per-key locks) because most operations touch one job that
//! nobody else touches at the same moment, so conflicts are rare and
//! nothing waits on a lock; and because concurrent commits are written to
//! the WAL together, so many synced transitions share one fsync.
//!
//! Durable by default: the WAL is fsynced at every commit
//! ([`RocksDbOptions::sync`]), so a committed transition survives a power
//! loss. Turning that off keeps the data safe across a crash of the process
//! but may lose the last commits on power loss.

mod handle;
mod keys;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Direction, ErrorKind, IteratorMode, OptimisticTransactionDB,
    OptimisticTransactionOptions, Options, Transaction, WriteOptions,
};
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::capabilities::Capabilities;
use crate::commit::{Commit, Committed};
use crate::duty::Hold;
use crate::error::StorageError;
use crate::events::{EventBus, StorageEvent};
use crate::model::{
    cancel_commit, commit_each, CancelOutcome, ClaimRequest, CountRow, DeleteOutcome, Heartbeat, HistoryEntry,
    Inserted, JobFilter, JobNames, JobPage, JobRecord, LeaseToken, ListOrder, Millis, NewJob,
};
use crate::storage::Storage;
use crate::{JobId, JobState};

use handle::Handle;

type Db = OptimisticTransactionDB;

/// A key and its value, as an iterator yields them.
type Entry = (Box<[u8]>, Box<[u8]>);

/// How many ready-queue keys a claim reads at a time.
const SCAN_BATCH: usize = 256;

/// How to open a [`RocksDbStorage`].
#[derive(Debug, Clone)]
pub struct RocksDbOptions {
    /// Fsync the WAL at every commit. Default: true.
    pub sync: bool,
    /// How often an operation is retried when it keeps conflicting with
    /// concurrent ones. Default: 1000.
    pub max_retries: u32,
}

impl Default for RocksDbOptions {
    fn default() -> Self {
        RocksDbOptions {
            sync: true,
            max_retries: 1000,
        }
    }
}

/// Jobs in a RocksDB directory. Clones share the same database.
#[derive(Clone)]
pub struct RocksDbStorage {
    handle: Arc<Handle>,
    events: EventBus,
}

/// One opening of the database.
struct Inner {
    db: Db,
    options: RocksDbOptions,
    /// Jobs claimed since the index column families were last compacted.
    claimed_since_compaction: std::sync::atomic::AtomicU64,
}

/// After this many claims, the index column families are compacted: every
/// claim leaves tombstones of the index entries it removed at the front of
/// those families, and a scan from the front would otherwise walk them all.
const COMPACT_EVERY: u64 = 4096;

fn backend(error: rocksdb::Error) -> StorageError {
    StorageError::backend(error)
}

fn corrupt(id: JobId, what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        id,
        message: format!("the stored {what} cannot be read: {error}"),
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(StorageError::backend)
}

fn raw<T: serde::Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, StorageError> {
    serde_json::value::to_raw_value(value).map_err(StorageError::backend)
}

impl RocksDbStorage {
    /// Opens (or creates) the database in the directory `path`, durable by
    /// default.
    ///
    /// # Errors
    /// When the directory cannot be opened (another process holds it, or
    /// it is not a RocksDB database).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, RocksDbOptions::default())
    }

    /// Opens (or creates) the database with `options`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(path: impl AsRef<Path>, options: RocksDbOptions) -> Result<Self, StorageError> {
        Ok(RocksDbStorage {
            handle: Arc::new(Handle::open(path.as_ref(), options)?),
            events: EventBus::new(),
        })
    }

    /// Runs a blocking database operation off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let handle = Arc::clone(&self.handle);
        tokio::task::spawn_blocking(move || {
            let inner = handle.current()?;
            let result = op(&inner);
            handle.note(&result);
            result
        })
        .await
        .map_err(|e| StorageError::backend(format!("a storage task failed: {e}")))?
    }
}

/// One optimistic transaction.
struct Tx<'a> {
    db: &'a Db,
    txn: Transaction<'a, Db>,
}

impl Inner {
    /// Opens (or creates) the database in `path`.
    fn open(path: &Path, options: RocksDbOptions) -> Result<Self, StorageError> {
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let families = keys::ALL
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = Db::open_cf_descriptors(&db_options, path, families)
            .map_err(|e| StorageError::backend(format!("cannot open RocksDB at {}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), sync = options.sync, "opened RocksDB storage");
        let inner = Inner {
            db,
            options,
            claimed_since_compaction: std::sync::atomic::AtomicU64::new(0),
        };
        inner.upgrade_ready_layout()?;
        Ok(inner)
    }

    /// Brings the `ready` keys of a database written before queues existed
    /// to this build's layout, once: each old entry is dropped and its job
    /// filed again (a pending job by due time, a running one by lease
    /// expiry), from where the next claim makes it ready under its new key.
    fn upgrade_ready_layout(&self) -> Result<(), StorageError> {
        self.transact(|tx| {
            if tx.get(keys::META, keys::READY_LAYOUT)?.as_deref() == Some(keys::READY_BY_QUEUE) {
                return Ok(());
            }
            for (key, _) in tx.scan(keys::READY, &[], |_| true)? {
                tx.delete(keys::READY, &key)?;
                let Some(id) = keys::read_id(&key) else { continue };
                match tx.load(id) {
                    Ok(Some(r)) => tx.file(&r)?,
                    Ok(None) => {}
                    // Due at once: the next claim meets it and fails it.
                    Err(StorageError::Corrupt { .. }) => {
                        tx.put(keys::SCHEDULED, &keys::timed(Millis::MIN, id), &[])?;
                    }
                    Err(other) => return Err(other),
                }
            }
            tx.put(keys::META, keys::READY_LAYOUT, keys::READY_BY_QUEUE)
        })
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::backend(format!("the column family `{name}` is missing")))
    }

    /// Runs `op` in a transaction, from scratch again whenever the commit
    /// finds that a key it read changed meanwhile.
    fn transact<T>(&self, op: impl Fn(&Tx) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut write = WriteOptions::default();
        write.set_sync(self.options.sync);
        for _ in 0..=self.options.max_retries {
            let tx = Tx {
                db: &self.db,
                txn: self
                    .db
                    .transaction_opt(&write, &OptimisticTransactionOptions::default()),
            };
            let value = op(&tx)?;
            match tx.txn.commit() {
                Ok(()) => return Ok(value),
                Err(e) if matches!(e.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => std::thread::yield_now(),
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StorageError::backend(format!(
            "an operation conflicted with concurrent ones {} times in a row; giving up",
            self.options.max_retries
        )))
    }

    /// Counts claims, and compacts the index column families every
    /// [`COMPACT_EVERY`] of them. Compaction only drops tombstones; what
    /// any read sees is unchanged.
    fn after_claims(&self, claimed: u64) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        let before = self.claimed_since_compaction.fetch_add(claimed, Ordering::Relaxed);
        if before + claimed < COMPACT_EVERY {
            return Ok(());
        }
        self.claimed_since_compaction.store(0, Ordering::Relaxed);
        for name in [keys::READY, keys::SCHEDULED, keys::LEASES] {
            self.db.compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn record(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        let bytes = self.db.get_cf(self.cf(keys::JOBS)?, keys::id(id)).map_err(backend)?;
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(|e| corrupt(id, "job", e)))
            .transpose()
    }
}

impl Tx<'_> {
    fn cf(&self, name: &str) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::backend(format!("the column family `{name}` is missing")))
    }

    /// Reads a key and makes the commit depend on it.
    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.txn.get_for_update_cf(self.cf(cf)?, key, true).map_err(backend)
    }

    fn put(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.txn.put_cf(self.cf(cf)?, key, value).map_err(backend)
    }

    fn delete(&self, cf: &str, key: &[u8]) -> Result<(), StorageError> {
        self.txn.delete_cf(self.cf(cf)?, key).map_err(backend)
    }

    /// Deletes job `r` with its history and idempotency key.
    fn remove(&self, r: &JobRecord) -> Result<(), StorageError> {
        self.delete(keys::JOBS, &keys::id(r.id))?;
        if let Some(key) = &r.idempotency_key {
            self.delete(keys::KEYS, key.as_bytes())?;
        }
        for seq in 0..=r.version {
            self.delete(keys::HISTORY, &keys::history(r.id, seq))?;
        }
        Ok(())
    }

    /// Keys (and values) from `start` on, while `keep` says so.
    fn scan(&self, cf: &str, start: &[u8], mut keep: impl FnMut(&[u8]) -> bool) -> Result<Vec<Entry>, StorageError> {
        let mut out = Vec::new();
        for item in self
            .txn
            .iterator_cf(self.cf(cf)?, IteratorMode::From(start, Direction::Forward))
        {
            let (key, value) = item.map_err(backend)?;
            if !keep(&key) {
                break;
            }
            out.push((key, value));
        }
        Ok(out)
    }

    fn load(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        self.get(keys::JOBS, &keys::id(id))?
            .map(|b| serde_json::from_slice(&b).map_err(|e| corrupt(id, "job", e)))
            .transpose()
    }

    /// The job, for a claim: one whose record cannot be read is failed
    /// ([`fail_unreadable`](Self::fail_unreadable)) and reads as gone, so
    /// it holds up no other job.
    fn load_or_fail(&self, id: JobId, now: Millis) -> Result<Option<JobRecord>, StorageError> {
        match self.load(id) {
            Err(StorageError::Corrupt { message, .. }) => {
                tracing::error!(job = %id, %message, "failing a job whose stored record cannot be read");
                self.fail_unreadable(id, &message, now)?;
                Ok(None)
            }
            loaded => loaded,
        }
    }

    /// Fails job `id`, whose record cannot be read (its payload nests too
    /// deeply to parse): the record's lifecycle fields are rewritten around
    /// the payload, which is kept byte for byte, and a lifecycle-only
    /// history entry is appended. A record that is not even a JSON object
    /// is left as it is (its index entries are gone, so it is no longer
    /// claimed).
    fn fail_unreadable(&self, id: JobId, reason: &str, now: Millis) -> Result<(), StorageError> {
        let Some(bytes) = self.get(keys::JOBS, &keys::id(id))? else {
            return Ok(());
        };
        let Ok(mut fields) = serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(&bytes) else {
            tracing::error!(job = %id, "the job's record is not a JSON object; leaving it unclaimed");
            return Ok(());
        };
        let field = |name: &str| fields.get(name).map(|raw| raw.get());
        let state: String = field("state")
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default();
        let attempts: u32 = field("attempts")
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default();
        let version = field("version")
            .and_then(|raw| serde_json::from_str::<u64>(raw).ok())
            .unwrap_or_default()
            + 1;
        for (name, value) in [
            ("status", raw(&JobState::Failed)),
            ("lease", raw(&None::<crate::model::Lease>)),
            ("version", raw(&version)),
            ("updated_at", raw(&now)),
            ("last_error", raw(&Some(reason))),
            ("cancel_requested", raw(&false)),
            ("cancel_reason", raw(&None::<String>)),
        ] {
            fields.insert(name.to_owned(), value?);
        }
        self.put(keys::JOBS, &keys::id(id), &encode(&fields)?)?;
        self.append(
            id,
            &HistoryEntry {
                seq: version,
                from: Some(state.clone()),
                to: state,
                status: JobState::Failed,
                error: Some(reason.to_owned()),
                at: now,
                attempt: attempts,
                worker: None,
                payload: serde_json::Value::Null,
            },
        )
    }

    /// A heartbeat: extends the lease `lease` of job `id`, if still held.
    fn extend_lease(
        &self,
        id: JobId,
        lease: LeaseToken,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Heartbeat, StorageError> {
        let mut r = self.must_load(id)?;
        r.check_lease(lease, now)?;
        let beat = r.extend_lease(now, lease_ms);
        self.store(&r)?;
        Ok(beat)
    }

    fn must_load(&self, id: JobId) -> Result<JobRecord, StorageError> {
        self.load(id)?.ok_or(StorageError::NotFound(id))
    }

    /// Writes a record and the index entry its lifecycle needs. Entries
    /// that went stale are skipped (and removed) when next scanned.
    fn store(&self, r: &JobRecord) -> Result<(), StorageError> {
        self.put(keys::JOBS, &keys::id(r.id), &encode(r)?)?;
        self.file(r)
    }

    /// Writes the index entry a record's lifecycle needs: a pending job
    /// due when it was written (submitted or handed back for now) goes
    /// straight to `ready`, one due later to `scheduled` by its due time; a
    /// running job's lease expiry goes to `leases`. A job due at once skips
    /// the promotion, so a bulk insert leaves no `scheduled` entries (nor
    /// their tombstones, which every later promotion would scan past).
    fn file(&self, r: &JobRecord) -> Result<(), StorageError> {
        match (r.status, &r.lease) {
            (JobState::Pending, _) if r.run_at <= r.updated_at => self.put(
                keys::READY,
                &keys::ready(&r.queue, &r.machine, r.priority, r.run_at, r.id),
                &[],
            ),
            (JobState::Pending, _) => self.schedule(r),
            (JobState::Running, Some(lease)) => self.put(keys::LEASES, &keys::timed(lease.expires_at, r.id), &[]),
            _ => Ok(()),
        }
    }

    /// Files a pending job by its due time, for a promotion to make it
    /// ready once due.
    fn schedule(&self, r: &JobRecord) -> Result<(), StorageError> {
        self.put(keys::SCHEDULED, &keys::timed(r.run_at, r.id), r.machine.as_bytes())
    }

    fn append(&self, id: JobId, entry: &HistoryEntry) -> Result<(), StorageError> {
        self.put(keys::HISTORY, &keys::history(id, entry.seq), &encode(entry)?)
    }

    fn insert(&self, job: &NewJob) -> Result<Inserted, StorageError> {
        if let Some(key) = &job.idempotency_key {
            if let Some(existing) = self.get(keys::KEYS, key.as_bytes())? {
                let id = keys::read_id(&existing)
                    .ok_or_else(|| StorageError::backend(format!("the idempotency key `{key}` is corrupt")))?;
                return Ok(Inserted { id, created: false });
            }
            self.put(keys::KEYS, key.as_bytes(), &keys::id(job.id))?;
        }
        if self.get(keys::JOBS, &keys::id(job.id))?.is_some() {
            return Err(StorageError::DuplicateId(job.id));
        }
        let record = JobRecord::from_new(job);
        self.store(&record)?;
        self.append(job.id, &job.submission_entry())?;
        Ok(Inserted {
            id: job.id,
            created: true,
        })
    }

    fn next_token(&self) -> Result<LeaseToken, StorageError> {
        let current = match self.get(keys::META, keys::NEXT_TOKEN)? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StorageError::backend("the lease token counter is corrupt"))?,
            ),
            None => 1,
        };
        self.put(keys::META, keys::NEXT_TOKEN, &(current + 1).to_be_bytes())?;
        Ok(LeaseToken(current))
    }

    /// Moves due pending jobs and lease-expired running jobs into their
    /// machine's ready queue.
    fn promote(&self, now: Millis) -> Result<(), StorageError> {
        for (index, requeue_if) in [(keys::SCHEDULED, JobState::Pending), (keys::LEASES, JobState::Running)] {
            let due = self.scan(index, &[], |key| keys::read_timed(key).is_some_and(|(at, _)| at <= now))?;
            for (key, _) in due {
                self.delete(index, &key)?;
                let Some((at, id)) = keys::read_timed(&key) else {
                    continue;
                };
                let Some(r) = self.load_or_fail(id, now)? else { continue };
                let current = match requeue_if {
                    JobState::Pending => r.status == JobState::Pending && r.run_at == at,
                    _ => r.status == JobState::Running && r.lease.as_ref().is_some_and(|l| l.expires_at == at),
                };
                if current {
                    self.put(
                        keys::READY,
                        &keys::ready(&r.queue, &r.machine, r.priority, r.run_at, r.id),
                        &[],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn claim(&self, request: &ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        // Read for update: a pause committed meanwhile makes this claim
        // start again, and find the queue paused.
        if self.get(keys::META, &keys::paused(&request.queue))?.is_some() {
            return Ok(Vec::new());
        }
        self.promote(request.now)?;
        // Up to `limit` claimable jobs per machine, in claim order; stale
        // entries (the job moved on since) are dropped on the way.
        let mut candidates: Vec<JobRecord> = Vec::new();
        for machine in &request.machines {
            let prefix = keys::ready_prefix(&request.queue, machine);
            let mut found = 0;
            let mut start = prefix.clone();
            'scan: while found < request.limit {
                let mut seen = 0;
                let batch = self.scan(keys::READY, &start, |key| {
                    seen += 1;
                    seen <= SCAN_BATCH && key.starts_with(&prefix)
                })?;
                let Some((last, _)) = batch.last() else { break };
                start = [&last[..], &[0]].concat();
                for (key, _) in batch {
                    let job = match keys::read_id(&key) {
                        Some(id) => self.load_or_fail(id, request.now)?,
                        None => None,
                    };
                    match job {
                        Some(r) if keys::ready(&r.queue, &r.machine, r.priority, r.run_at, r.id) == *key => {
                            if r.is_claimable(request.now) {
                                candidates.push(r);
                                found += 1;
                                if found == request.limit {
                                    break 'scan;
                                }
                            } else {
                                self.delete(keys::READY, &key)?;
                                // Made ready by a writer or claimer whose
                                // clock is ahead of this one's: due later
                                // here, not lost.
                                match r.status {
                                    JobState::Pending => self.schedule(&r)?,
                                    _ => self.file(&r)?,
                                }
                            }
                        }
                        _ => self.delete(keys::READY, &key)?,
                    }
                }
            }
        }
        candidates.sort_by_key(|r| (r.priority, r.run_at, r.id));
        candidates.truncate(request.limit);
        let mut claimed = Vec::with_capacity(candidates.len());
        for mut r in candidates {
            self.delete(
                keys::READY,
                &keys::ready(&r.queue, &r.machine, r.priority, r.run_at, r.id),
            )?;
            r.claim(&request.worker, self.next_token()?, request.now, request.lease_ms);
            self.store(&r)?;
            claimed.push(r);
        }
        Ok(claimed)
    }

    fn commit(&self, commit: &Commit) -> Result<JobRecord, StorageError> {
        let mut r = self.must_load(commit.id)?;
        r.check_commit(commit)?;
        let entry = r.apply(commit);
        self.store(&r)?;
        self.append(r.id, &entry)?;
        Ok(r)
    }
}

/// What counts and prunes read of a stored job: the payload and the other
/// fields are skipped, not parsed, so a job whose payload cannot be read is
/// still counted and pruned.
#[derive(serde::Deserialize)]
struct Summary {
    id: JobId,
    machine: String,
    #[serde(default = "crate::model::default_queue")]
    queue: String,
    state: String,
    status: JobState,
    updated_at: Millis,
}

impl Summary {
    /// The summary of the job stored under `key`.
    fn read(key: &[u8], value: &[u8]) -> Result<Self, StorageError> {
        serde_json::from_slice(value).map_err(|e| {
            let id = keys::read_id(key).unwrap_or(JobId::from_u128(0));
            corrupt(id, "job", e)
        })
    }
}

impl RocksDbStorage {
    fn announce(&self, record: &JobRecord) {
        self.events.send(StorageEvent::JobChanged(record.id));
        if record.status == JobState::Pending {
            self.events.send(StorageEvent::JobsReady);
        }
    }
}

#[async_trait]
impl Storage for RocksDbStorage {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError> {
        job.check()?;
        let inserted = self.blocking(move |db| db.transact(|tx| tx.insert(&job))).await?;
        self.events.send(StorageEvent::JobsReady);
        Ok(inserted)
    }

    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        jobs.iter().try_for_each(NewJob::check)?;
        let mut ids = std::collections::HashSet::with_capacity(jobs.len());
        if let Some(dup) = jobs.iter().find(|j| !ids.insert(j.id)) {
            return Err(StorageError::DuplicateId(dup.id));
        }
        let inserted = self
            .blocking(move |db| db.transact(|tx| jobs.iter().map(|j| tx.insert(j)).collect::<Result<Vec<_>, _>>()))
            .await?;
        self.events.send(StorageEvent::JobsReady);
        Ok(inserted)
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        self.blocking(move |db| db.record(id)).await
    }

    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError> {
        let filter = filter.clone();
        self.blocking(move |db| {
            let start = after.map(|a| match order {
                ListOrder::OldestFirst => keys::id(JobId::from_u128(a.as_u128().saturating_add(1))),
                ListOrder::NewestFirst => keys::id(JobId::from_u128(a.as_u128().saturating_sub(1))),
            });
            let mode = match (&start, order) {
                (Some(start), ListOrder::OldestFirst) => IteratorMode::From(start, Direction::Forward),
                (Some(start), ListOrder::NewestFirst) => IteratorMode::From(start, Direction::Reverse),
                (None, ListOrder::OldestFirst) => IteratorMode::Start,
                (None, ListOrder::NewestFirst) => IteratorMode::End,
            };
            let mut jobs = Vec::new();
            for item in db.db.iterator_cf(db.cf(keys::JOBS)?, mode) {
                let (key, value) = item.map_err(backend)?;
                let id = keys::read_id(&key).unwrap_or(JobId::from_u128(0));
                if after.is_some_and(|a| a == id) {
                    // The cursor itself, when it was 0 or the greatest id.
                    continue;
                }
                let r: JobRecord = serde_json::from_slice(&value).map_err(|e| corrupt(id, "job", e))?;
                if filter.matches(&r.machine, &r.queue, &r.state, r.status) {
                    jobs.push(r);
                    if jobs.len() > limit {
                        break;
                    }
                }
            }
            Ok(JobPage::from_fetched(jobs, limit))
        })
        .await
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        if request.limit == 0 || request.machines.is_empty() {
            return Ok(Vec::new());
        }
        self.blocking(move |db| {
            let claimed = db.transact(|tx| tx.claim(&request))?;
            db.after_claims(claimed.len() as u64)?;
            Ok(claimed)
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
        self.blocking(move |db| {
            db.transact(|tx| {
                let mut r = tx.must_load(id)?;
                if r.status != JobState::Pending && !r.is_claimable(now) {
                    return Ok(None);
                }
                r.claim(&worker, tx.next_token()?, now, lease_ms);
                tx.store(&r)?;
                Ok(Some(r))
            })
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<JobRecord, StorageError> {
        let record = self.blocking(move |db| db.transact(|tx| tx.commit(&commit))).await?;
        self.announce(&record);
        Ok(record)
    }

    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        // One transaction for the batch; a commit that fails its checks
        // (version, lease, a missing job) leaves the others to go through.
        let commits = commits.to_vec();
        let results = self
            .blocking(move |db| {
                // A database error fails the batch, which is retried or fails whole.
                db.transact(|tx| commit_each(&commits, |commit| tx.commit(commit)))
            })
            .await?;
        Ok(results
            .into_iter()
            .map(|result| {
                result.map(|record| {
                    self.announce(&record);
                    Committed::of(&record)
                })
            })
            .collect())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new().batched_commits()
    }

    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        self.blocking(move |db| {
            let prefix = keys::id(id);
            let mut out = Vec::new();
            for item in db
                .db
                .iterator_cf(db.cf(keys::HISTORY)?, IteratorMode::From(&prefix, Direction::Forward))
            {
                let (key, value) = item.map_err(backend)?;
                if !key.starts_with(&prefix) {
                    break;
                }
                out.push(serde_json::from_slice(&value).map_err(|e| corrupt(id, "history", e))?);
            }
            Ok(out)
        })
        .await
    }

    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError> {
        self.blocking(move |db| {
            // One trip off the async threads; a transaction per job, so one
            // lost lease does not hold up the others.
            Ok(leases
                .iter()
                .map(|&(id, lease)| db.transact(|tx| tx.extend_lease(id, lease, now, lease_ms)))
                .collect())
        })
        .await
    }

    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError> {
        self.blocking(move |db| {
            db.transact(|tx| {
                let mut r = tx.must_load(id)?;
                r.check_lease(lease, now)?;
                r.release(now);
                tx.store(&r)
            })
        })
        .await?;
        self.events.send(StorageEvent::JobsReady);
        Ok(())
    }

    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError> {
        let outcome = self
            .blocking(move |db| {
                db.transact(|tx| {
                    let mut r = tx.must_load(id)?;
                    match r.status {
                        JobState::Pending => {
                            let record = tx.commit(&cancel_commit(&r, now, reason.clone()))?;
                            Ok(CancelOutcome::Cancelled(Box::new(record)))
                        }
                        JobState::Running => {
                            r.request_cancel(reason.clone());
                            tx.store(&r)?;
                            Ok(CancelOutcome::Requested)
                        }
                        finished => Ok(CancelOutcome::AlreadyFinished(finished)),
                    }
                })
            })
            .await?;
        if matches!(outcome, CancelOutcome::Cancelled(_)) {
            self.events.send(StorageEvent::JobChanged(id));
        }
        Ok(outcome)
    }

    async fn counts(&self) -> Result<Vec<CountRow>, StorageError> {
        self.blocking(|db| {
            let mut jobs = Vec::new();
            for item in db.db.iterator_cf(db.cf(keys::JOBS)?, IteratorMode::Start) {
                let (key, value) = item.map_err(backend)?;
                jobs.push(Summary::read(&key, &value)?);
            }
            Ok(CountRow::tally_names(jobs.iter().map(|j| JobNames {
                machine: &j.machine,
                queue: &j.queue,
                state: &j.state,
                status: j.status,
            })))
        })
        .await
    }

    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError> {
        let outcome = self
            .blocking(move |db| {
                db.transact(|tx| {
                    let r = tx.load(id)?.ok_or(StorageError::NotFound(id))?;
                    if !r.status.is_finished() {
                        return Ok(DeleteOutcome::NotFinished(r.status));
                    }
                    tx.remove(&r)?;
                    Ok(DeleteOutcome::Deleted)
                })
            })
            .await?;
        if outcome == DeleteOutcome::Deleted {
            self.events.send(StorageEvent::JobChanged(id));
        }
        Ok(outcome)
    }

    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError> {
        status.expect_finished()?;
        self.blocking(move |db| {
            let mut gone = Vec::new();
            for item in db.db.iterator_cf(db.cf(keys::JOBS)?, IteratorMode::Start) {
                if gone.len() == limit {
                    break;
                }
                let (key, value) = item.map_err(backend)?;
                let job = Summary::read(&key, &value)?;
                if job.status == status && job.updated_at < before {
                    gone.push(job.id);
                }
            }
            db.transact(|tx| {
                let mut pruned = 0;
                for id in &gone {
                    // Re-read under the transaction: it may have changed.
                    let Some(r) = tx.load(*id)? else { continue };
                    if !(r.status == status && r.updated_at < before) {
                        continue;
                    }
                    tx.remove(&r)?;
                    pruned += 1;
                }
                Ok(pruned)
            })
        })
        .await
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError> {
        let key = keys::paused(queue);
        let was = self
            .blocking(move |db| {
                db.transact(|tx| {
                    let was = tx.get(keys::META, &key)?.is_some();
                    if paused {
                        tx.put(keys::META, &key, &[])?;
                    } else {
                        tx.delete(keys::META, &key)?;
                    }
                    Ok(was)
                })
            })
            .await?;
        if was && !paused {
            self.events.send(StorageEvent::JobsReady);
        }
        Ok(was)
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StorageError> {
        self.blocking(|db| {
            let mut queues = Vec::new();
            let mode = IteratorMode::From(keys::PAUSED, Direction::Forward);
            for item in db.db.iterator_cf(db.cf(keys::META)?, mode) {
                let (key, _) = item.map_err(backend)?;
                let Some(name) = key.strip_prefix(keys::PAUSED) else {
                    break;
                };
                queues.push(String::from_utf8_lossy(name).into_owned());
            }
            queues.sort();
            Ok(queues)
        })
        .await
    }

    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError> {
        let key = keys::duty(duty);
        let owner = owner.to_owned();
        self.blocking(move |db| {
            db.transact(|tx| {
                if let Some(bytes) = tx.get(keys::META, &key)? {
                    let hold: Hold = serde_json::from_slice(&bytes)
                        .map_err(|e| StorageError::backend(format!("the hold of a duty is corrupt: {e}")))?;
                    if !hold.yields_to(&owner, now) {
                        return Ok(false);
                    }
                }
                let hold = Hold {
                    owner: owner.clone(),
                    until: crate::model::add_ms(now, ttl_ms),
                };
                tx.put(
                    keys::META,
                    &key,
                    &serde_json::to_vec(&hold).map_err(StorageError::backend)?,
                )?;
                Ok(true)
            })
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
    use super::*;
    use crate::testing::{claim_request, new_job};

    #[test]
    fn a_job_made_ready_before_queues_existed_is_claimed_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let job = new_job("m", 1);
        {
            // A database as a build without queues left it: the job ready
            // under a key of machine, priority, run_at and id alone, and no
            // layout mark.
            let db = Inner::open(dir.path(), RocksDbOptions::default()).unwrap();
            db.transact(|tx| {
                tx.insert(&job)?;
                tx.delete(keys::SCHEDULED, &keys::timed(job.run_at, job.id))?;
                let old = [
                    &1_u16.to_be_bytes()[..],
                    b"m",
                    &(1_u32 << 31).to_be_bytes(),
                    &(1_u64 << 63).to_be_bytes(),
                    &keys::id(job.id),
                ]
                .concat();
                tx.put(keys::READY, &old, &[])?;
                tx.delete(keys::META, keys::READY_LAYOUT)
            })
            .unwrap();
        }
        let db = Inner::open(dir.path(), RocksDbOptions::default()).unwrap();
        let claimed = db.transact(|tx| tx.claim(&claim_request(&["m"], 10, 0))).unwrap();
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    }
}

//! [`InMemoryStorage`]: the default backend. Nothing survives the process.
//!
//! Jobs live in a sharded map: reading, committing or heartbeating one job
//! locks only its shard. The ordering index (due times, ready jobs per
//! queue and machine in (priority, run_at, id) order, lease expiries,
//! paused queues) sits behind one short-held lock that only claims and
//! re-queues take (`index.rs`; the due jobs of one queue and machine in
//! `ready.rs`); index entries are validated against the job record when
//! popped, so a stale one is skipped.
//! Each job is kept compactly (`stored.rs`), with its history (`history.rs`)
//! and the names its shard shares (`names.rs`).

mod history;
mod index;
mod names;
mod ready;
mod stored;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::capabilities::Capabilities;
use crate::commit::{Commit, Committed, Outcome};
use crate::duty::Duties;
use crate::error::StorageError;
use crate::events::{EventBus, StorageEvent};
use crate::model::{
    add_ms, cancel_commit, CancelOutcome, ClaimRequest, CountRow, DeleteOutcome, Heartbeat, HistoryEntry, Inserted,
    JobFilter, JobNames, JobPage, JobRecord, LeaseToken, ListOrder, Millis, NewJob,
};
use crate::storage::Storage;
use crate::{JobId, JobState};

use index::{Index, IndexLock};
use names::Names;
use ready::{ReadyJobs, ReadyKey};
use stored::{LeaseDue, StoredJob};

const SHARDS: usize = 32;

/// Where a ready job waits in the index: its queue, then its machine.
#[derive(Clone, Copy)]
struct Lane<'a> {
    queue: &'a str,
    machine: &'a str,
}

impl<'a> Lane<'a> {
    fn of(queue: &'a str, machine: &'a str) -> Self {
        Lane { queue, machine }
    }

    fn of_stored(job: &StoredJob, names: &'a Names) -> Self {
        Lane::of(names.get(job.queue()), names.get(job.machine()))
    }
}

/// Room made up front for the jobs of one claim, so the claim's vector is
/// not grown (and copied) job by job; bounded, since the limit comes from
/// the caller.
const MAX_PREALLOCATED_CLAIM: usize = 1024;

/// The default storage: fast, concurrent, and gone when the process ends.
///
/// Clones share the same jobs.
#[derive(Clone, Default)]
pub struct InMemoryStorage {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<Shard>>,
    index: IndexLock,
    /// Serializes inserts, so idempotency keys and batch atomicity hold.
    keys: Mutex<HashMap<String, JobId>>,
    next_token: AtomicU64,
    events: EventBus,
    duties: Mutex<Duties>,
}

/// One shard of the jobs, with the names its jobs use.
#[derive(Default)]
struct Shard {
    /// Hashed with foldhash, not SipHash: every operation looks a job up,
    /// and foldhash's per-map random seed still keeps chosen ids from
    /// piling up in one bucket.
    jobs: foldhash::HashMap<JobId, Box<StoredJob>>,
    names: Names,
}

impl Shard {
    fn job(&mut self, id: JobId) -> Result<&mut StoredJob, StorageError> {
        self.jobs
            .get_mut(&id)
            .map(|job| &mut **job)
            .ok_or(StorageError::NotFound(id))
    }

    /// Job `id`'s full record.
    fn record(&self, id: JobId) -> Result<JobRecord, StorageError> {
        let job = self.jobs.get(&id).ok_or(StorageError::NotFound(id))?;
        job.record(id, &self.names)
    }

    /// Runs `f` on job `id`'s full record and keeps what it changed in the
    /// job's lifecycle (not its state or payload). Returns what `f` did, the
    /// job after, and where the lease index files its lease.
    fn with_record<T>(
        &mut self,
        id: JobId,
        f: impl FnOnce(&mut JobRecord) -> Result<T, StorageError>,
    ) -> Result<(T, JobRecord, LeaseFiling), StorageError> {
        let Shard { jobs, names } = self;
        let job = jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
        let before = job.filed_lease();
        let mut record = job.record(id, names)?;
        let out = f(&mut record)?;
        job.update(&record, names)?;
        let filed = LeaseFiling {
            before,
            after: job.filed_lease(),
        };
        Ok((out, record, filed))
    }

    /// Checks and applies `commit`, appending its history entry, and
    /// leaves the job after in `record` (see [`Storage::commit_into`]).
    /// Returns where the lease index files its lease before and after.
    fn commit_into(&mut self, mut commit: Commit, record: &mut JobRecord) -> Result<LeaseFiling, StorageError> {
        let Shard { jobs, names } = self;
        let job = jobs.get_mut(&commit.id).ok_or(StorageError::NotFound(commit.id))?;
        job.check_commit(commit.id, &commit)?;
        // The commit is ours: its state and payload move into the record,
        // not copied, and the stored ones are not read.
        let change = commit.outcome.take_change();
        record.id = commit.id;
        job.read_into(record, change.is_none(), names)?;
        let before = job.filed_lease();
        record.apply_to_record(&commit);
        if let Some(change) = change {
            record.state = change.state;
            record.payload = change.payload;
        }
        job.record_commit(record, &commit, names)?;
        Ok(LeaseFiling {
            before,
            after: job.filed_lease(),
        })
    }
}

impl Shard {
    /// Fails job `id`, whose stored payload cannot be read back, so that it
    /// stops being claimed: `failed` with `reason`, a lifecycle-only
    /// history entry, the payload left as stored. Reads nothing of the
    /// payload. Returns the job after and where its lease was filed.
    fn fail_unreadable(
        &mut self,
        id: JobId,
        reason: &str,
        now: Millis,
    ) -> Result<(JobRecord, LeaseFiling), StorageError> {
        let Shard { jobs, names } = self;
        let job = jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
        let mut record = JobRecord::blank(id);
        job.read_into(&mut record, false, names)?;
        let commit = Commit::unleased(
            &record,
            now,
            None,
            Outcome::Failed {
                error: reason.to_owned(),
            },
        );
        let before = job.filed_lease();
        record.apply_to_record(&commit);
        job.record_commit(&record, &commit, names)?;
        let filed = LeaseFiling {
            before,
            after: job.filed_lease(),
        };
        Ok((record, filed))
    }
}

/// Where the lease index files a job's lease ([`StoredJob::filed_lease`])
/// before and after an operation.
#[derive(Clone, Copy)]
struct LeaseFiling {
    before: Option<Millis>,
    after: Option<Millis>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            index: IndexLock::default(),
            keys: Mutex::default(),
            next_token: AtomicU64::new(1),
            events: EventBus::new(),
            duties: Mutex::default(),
        }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it:
/// every critical section here leaves the data consistent before anything
/// that can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InMemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims job `id`, picked from the ready queue as (priority, run_at),
    /// if it is still that job and claimable.
    fn claim_candidate(
        &self,
        id: JobId,
        priority: i32,
        run_at: Millis,
        request: &ClaimRequest,
    ) -> Result<Candidate, StorageError> {
        let mut shard = lock(self.inner.shard(id));
        match shard.jobs.get(&id) {
            Some(job) if job.priority() == priority && job.run_at() == run_at => {}
            _ => return Ok(Candidate::Gone),
        }
        let next_token = &self.inner.next_token;
        let (took, record, _) = shard.with_record(id, |r| {
            if !r.is_claimable(request.now) {
                return Ok(false);
            }
            let token = LeaseToken(next_token.fetch_add(1, Ordering::Relaxed));
            r.claim(&request.worker, token, request.now, request.lease_ms);
            Ok(true)
        })?;
        Ok(match record.status {
            _ if took => Candidate::Claimed(record),
            // Queued as due by a writer whose clock is ahead of this
            // claimer's: not lost, but scheduled for when it is due here.
            JobState::Pending => Candidate::NotDue(run_at),
            // Queued as expired by a claimer whose clock is ahead: its
            // lease entry was taken off the index then, so it is filed
            // again, to come due once the lease has run out here too.
            JobState::Running => match shard.jobs.get(&id).and_then(|job| job.filed_lease()) {
                Some(filed) => Candidate::LeaseHeld(filed),
                None => Candidate::Gone,
            },
            _ => Candidate::Gone,
        })
    }
}

impl InMemoryStorage {
    /// Fails job `id`, whose stored payload cannot be read, and announces
    /// it; logged, since nothing else reports it.
    fn fail_unreadable(&self, id: JobId, message: &str, now: Millis) {
        tracing::error!(job = %id, %message, "failing a job whose stored payload cannot be read");
        let failed = lock(self.inner.shard(id)).fail_unreadable(id, message, now);
        match failed {
            Ok((record, filed)) => {
                self.inner.requeue(&record, filed);
                self.inner.events.send(StorageEvent::JobChanged(id));
            }
            Err(error) => tracing::error!(job = %id, %error, "could not fail a job that cannot be read"),
        }
    }
}

/// What became of a job picked from the ready queue. Unpacked as soon as
/// it is returned: boxing the record would cost an allocation per job.
#[allow(clippy::large_enum_variant)]
enum Candidate {
    Claimed(JobRecord),
    /// Pending, but not due by the claim's clock.
    NotDue(Millis),
    /// Running under a lease that has not run out by the claim's clock;
    /// the lease index entry to file again.
    LeaseHeld(Millis),
    /// Changed since it was queued (a change queues a job again if needed).
    Gone,
}

impl Inner {
    fn shard(&self, id: JobId) -> &Mutex<Shard> {
        // The low bits of a UUIDv7 are random.
        &self.shards[(id.as_u128() as usize) % SHARDS]
    }

    /// Index upkeep after a record changed, `filed` its lease's entry
    /// before and after. The replaced entry goes, so the lease index holds
    /// one entry per running job however many steps and heartbeats they
    /// commit (an entry left behind by a race is harmless: entries are
    /// checked against the job when popped). A lease extended keeps its
    /// entry, so a step that goes on under its lease takes no index lock,
    /// and the entry of a job that ends is retired without it.
    fn requeue(&self, record: &JobRecord, filed: LeaseFiling) {
        let pending = record.status == JobState::Pending;
        match (filed.before, filed.after) {
            (before, after) if before == after && !pending => return,
            (Some(before), None) if !pending => return self.index.retire(before, record.id),
            _ => {}
        }
        let mut index = self.index.lock();
        if filed.before != filed.after {
            if let Some(before) = filed.before {
                index.leases.remove(&(before, record.id));
            }
            if let Some(after) = filed.after {
                index.leases.insert((after, record.id));
            }
        }
        if pending {
            let key = (record.priority, record.run_at, record.id);
            let lane = Lane::of(&record.queue, &record.machine);
            Self::queue_pending(&mut index, lane, key, record.updated_at);
        }
    }

    /// Stores `job` in its shard and files its idempotency key, under the
    /// insert lock (`keys`); it is not queued yet ([`queue_new`](Self::queue_new)).
    /// A job whose key an existing job has is not stored: that job's id is
    /// returned, not created.
    fn store_locked(&self, keys: &mut HashMap<String, JobId>, job: &NewJob) -> Result<Inserted, StorageError> {
        if let Some(existing) = job.idempotency_key.as_ref().and_then(|k| keys.get(k)) {
            return Ok(Inserted {
                id: *existing,
                created: false,
            });
        }
        let mut shard = lock(self.shard(job.id));
        let Shard { jobs, names } = &mut *shard;
        match jobs.entry(job.id) {
            Entry::Occupied(_) => return Err(StorageError::DuplicateId(job.id)),
            Entry::Vacant(slot) => {
                slot.insert(Box::new(StoredJob::new(job, names)?));
            }
        }
        drop(shard);
        if let Some(key) = &job.idempotency_key {
            keys.insert(key.clone(), job.id);
        }
        Ok(Inserted {
            id: job.id,
            created: true,
        })
    }

    /// Files stored new jobs in the index, under one hold of its lock:
    /// each in its lane's ready set, or by due time.
    fn queue_new<'j>(&self, jobs: impl IntoIterator<Item = &'j NewJob>) {
        let mut index = self.index.lock();
        for job in jobs {
            let key = (job.priority, job.run_at, job.id);
            Self::queue_pending(&mut index, Lane::of(&job.queue, &job.machine), key, job.created_at);
        }
    }

    /// Moves due and lease-expired jobs into their lane's ready set.
    fn promote(&self, index: &mut Index, now: Millis) {
        while let Some(&(run_at, id)) = index.scheduled.first() {
            if run_at > now {
                break;
            }
            index.scheduled.pop_first();
            let shard = lock(self.shard(id));
            if let Some(job) = shard.jobs.get(&id) {
                if job.status() == JobState::Pending && job.run_at() == run_at {
                    let lane = Lane::of_stored(job, &shard.names);
                    Self::make_ready(index, lane, (job.priority(), run_at, id));
                }
            }
        }
        while let Some(&(at, id)) = index.leases.first() {
            if at > now {
                break;
            }
            index.leases.pop_first();
            let mut shard = lock(self.shard(id));
            let Shard { jobs, names } = &mut *shard;
            if let Some(job) = jobs.get_mut(&id) {
                match job.lease_due(at, now) {
                    LeaseDue::Expired => {
                        let lane = Lane::of_stored(job, names);
                        Self::make_ready(index, lane, (job.priority(), job.run_at(), id));
                    }
                    LeaseDue::Extended(until) => {
                        index.leases.insert((until, id));
                    }
                    LeaseDue::Stale => {}
                }
            }
        }
    }

    /// Queues a pending job of `lane`, keyed (priority, run_at, id) and
    /// last written at `written`: in its lane's ready set if it was
    /// due then, as a job submitted or handed back for now is; otherwise in
    /// the due-time index, from which a claim promotes it once due. A job
    /// due when written skips the promotion, which after a bulk insert of a
    /// million jobs held the index lock for half a second at the first
    /// claim.
    fn queue_pending(index: &mut Index, lane: Lane<'_>, key: ReadyKey, written: Millis) {
        let (_, run_at, id) = key;
        if run_at <= written {
            Self::make_ready(index, lane, key);
        } else {
            index.scheduled.insert((run_at, id));
        }
    }

    /// Puts a job in its lane's ready set.
    fn make_ready(index: &mut Index, lane: Lane<'_>, key: ReadyKey) {
        let machines = match index.ready.get_mut(lane.queue) {
            Some(machines) => machines,
            None => index.ready.entry(Arc::from(lane.queue)).or_default(),
        };
        match machines.get_mut(lane.machine) {
            Some(ready) => {
                ready.insert(key);
            }
            None => {
                let mut ready = ReadyJobs::default();
                ready.insert(key);
                machines.insert(Arc::from(lane.machine), ready);
            }
        }
    }

    /// Pops the smallest ready entry of `queue` among the requested
    /// machines; none while `queue` is paused.
    fn pop_ready(index: &mut Index, queue: &str, machines: &[String]) -> Option<ReadyKey> {
        if index.paused.contains(queue) {
            return None;
        }
        let ready = index.ready.get_mut(queue)?;
        let best = machines
            .iter()
            .filter_map(|m| ready.get(m.as_str())?.first().map(|key| (key, m)))
            .min_by_key(|(key, _)| *key)?;
        let (key, machine) = best;
        ready.get_mut(machine.as_str())?.pop_first();
        Some(key)
    }
}

#[async_trait]
impl Storage for InMemoryStorage {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError> {
        job.check()?;
        let mut keys = lock(&self.inner.keys);
        let inserted = self.inner.store_locked(&mut keys, &job)?;
        if inserted.created {
            self.inner.queue_new([&job]);
        }
        drop(keys);
        if inserted.created {
            self.inner.events.send(StorageEvent::JobsReady);
        }
        Ok(inserted)
    }

    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        jobs.iter().try_for_each(NewJob::check)?;
        let mut keys = lock(&self.inner.keys);
        // Check every id first, so a duplicate leaves nothing inserted
        // (nor seen by a reader meanwhile); the insert lock keeps any other
        // insert from storing one of them after.
        let mut ids = foldhash::HashSet::with_capacity_and_hasher(jobs.len(), Default::default());
        for job in &jobs {
            if !ids.insert(job.id) || lock(self.inner.shard(job.id)).jobs.contains_key(&job.id) {
                return Err(StorageError::DuplicateId(job.id));
            }
        }
        let mut out = Vec::with_capacity(jobs.len());
        let stored = jobs.iter().try_for_each(|job| {
            out.push(self.inner.store_locked(&mut keys, job)?);
            Ok(())
        });
        // Those stored before a job that could not be are queued all the
        // same: none is left stored and never claimed.
        let created = || jobs.iter().zip(&out).filter(|(_, i)| i.created).map(|(job, _)| job);
        self.inner.queue_new(created());
        drop(keys);
        if created().next().is_some() {
            self.inner.events.send(StorageEvent::JobsReady);
        }
        stored.map(|()| out)
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        match lock(self.inner.shard(id)).record(id) {
            Err(StorageError::NotFound(_)) => Ok(None),
            found => found.map(Some),
        }
    }

    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError> {
        let beyond = |id: JobId| match (after, order) {
            (None, _) => true,
            (Some(a), ListOrder::OldestFirst) => id > a,
            (Some(a), ListOrder::NewestFirst) => id < a,
        };
        // Ids first, records only for the page: a listing of a large store
        // copies `limit` records, not every match.
        let mut matching: Vec<JobId> = Vec::new();
        for shard in &self.inner.shards {
            let shard = lock(shard);
            let names = &shard.names;
            for (&id, job) in &shard.jobs {
                let (machine, queue, state) =
                    (names.get(job.machine()), names.get(job.queue()), names.get(job.state()));
                if beyond(id) && filter.matches(machine, queue, state, job.status()) {
                    matching.push(id);
                }
            }
        }
        match order {
            ListOrder::OldestFirst => matching.sort_unstable(),
            ListOrder::NewestFirst => matching.sort_unstable_by(|a, b| b.cmp(a)),
        }
        matching.truncate(limit.saturating_add(1));
        let mut page = Vec::with_capacity(matching.len());
        for id in matching {
            // A job deleted (pruned) meanwhile is left out.
            match lock(self.inner.shard(id)).record(id) {
                Ok(record) => page.push(record),
                Err(StorageError::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(JobPage::from_fetched(page, limit))
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        let mut claimed = Vec::with_capacity(request.limit.min(MAX_PREALLOCATED_CLAIM));
        if request.limit == 0 || request.machines.is_empty() {
            return Ok(claimed);
        }
        // Every lease of this claim runs out at the same time, so the index
        // lock is taken once per round: to pick candidates and to file
        // their leases. It is not held while the jobs are claimed, so
        // commits are not held up behind a large claim. A candidate that
        // changed meanwhile is skipped (its change queued it again if it is
        // still ready), and the lease entry filed for it is dropped when it
        // comes due: it is not that job's lease.
        let expires_at = add_ms(request.now, request.lease_ms);
        loop {
            let candidates: Vec<ReadyKey> = {
                let mut index = self.inner.index.lock();
                self.inner.promote(&mut index, request.now);
                let candidates: Vec<_> = (claimed.len()..request.limit)
                    .map_while(|_| Inner::pop_ready(&mut index, &request.queue, &request.machines))
                    .collect();
                index
                    .leases
                    .extend(candidates.iter().map(|&(_, _, id)| (expires_at, id)));
                candidates
            };
            if candidates.is_empty() {
                break;
            }
            let (mut not_due, mut held) = (Vec::new(), Vec::new());
            let mut candidates = candidates.into_iter();
            while let Some((priority, run_at, id)) = candidates.next() {
                match self.claim_candidate(id, priority, run_at, &request) {
                    Ok(Candidate::Claimed(record)) => claimed.push(record),
                    Ok(Candidate::NotDue(run_at)) => not_due.push((run_at, id)),
                    Ok(Candidate::LeaseHeld(filed)) => held.push((filed, id)),
                    Ok(Candidate::Gone) => {}
                    // One job's unreadable payload fails that job alone;
                    // the other candidates are still claimed.
                    Err(StorageError::Corrupt { id, message }) => self.fail_unreadable(id, &message, request.now),
                    Err(other) => {
                        // The candidates not claimed are queued again, to be
                        // picked next time (the jobs claimed so far come back
                        // when their leases run out).
                        let rest = std::iter::once((run_at, id)).chain(candidates.map(|(_, at, id)| (at, id)));
                        self.inner.index.lock().scheduled.extend(rest);
                        return Err(other);
                    }
                }
            }
            if !not_due.is_empty() || !held.is_empty() {
                let mut index = self.inner.index.lock();
                index.scheduled.extend(not_due);
                index.leases.extend(held);
            }
            if claimed.len() == request.limit {
                break;
            }
        }
        Ok(claimed)
    }

    async fn claim_job(
        &self,
        id: JobId,
        worker: &str,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Option<JobRecord>, StorageError> {
        let mut shard = lock(self.inner.shard(id));
        let next_token = &self.inner.next_token;
        let (took, record, filed) = shard.with_record(id, |r| {
            if r.status != JobState::Pending && !r.is_claimable(now) {
                return Ok(false);
            }
            let token = LeaseToken(next_token.fetch_add(1, Ordering::Relaxed));
            r.claim(worker, token, now, lease_ms);
            Ok(true)
        })?;
        drop(shard);
        if !took {
            return Ok(None);
        }
        self.inner.requeue(&record, filed);
        Ok(Some(record))
    }

    async fn commit(&self, commit: Commit) -> Result<JobRecord, StorageError> {
        let mut record = JobRecord::blank(commit.id);
        self.commit_into(commit, &mut record).await?;
        Ok(record)
    }

    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        let mut results = Vec::with_capacity(commits.len());
        for commit in commits {
            let mut record = JobRecord::blank(commit.id);
            let result = self.commit_into(commit.clone(), &mut record).await;
            results.push(result.map(|()| Committed::of(&record)));
        }
        Ok(results)
    }

    async fn commit_into(&self, commit: Commit, record: &mut JobRecord) -> Result<(), StorageError> {
        let filed = lock(self.inner.shard(commit.id)).commit_into(commit, record)?;
        self.inner.requeue(record, filed);
        self.inner.events.send(StorageEvent::JobChanged(record.id));
        if record.status == JobState::Pending {
            self.inner.events.send(StorageEvent::JobsReady);
        }
        Ok(())
    }

    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        let shard = lock(self.inner.shard(id));
        match shard.jobs.get(&id) {
            Some(job) => job.history(id, &shard.names),
            None => Ok(Vec::new()),
        }
    }

    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError> {
        Ok(leases
            .into_iter()
            .map(|(id, lease)| {
                let mut shard = lock(self.inner.shard(id));
                let (beat, record, filed) = shard.with_record(id, |r| {
                    r.check_lease(lease, now)?;
                    Ok(r.extend_lease(now, lease_ms))
                })?;
                drop(shard);
                self.inner.requeue(&record, filed);
                Ok(beat)
            })
            .collect())
    }

    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError> {
        let mut shard = lock(self.inner.shard(id));
        let ((), record, filed) = shard.with_record(id, |r| {
            r.check_lease(lease, now)?;
            r.release(now);
            Ok(())
        })?;
        drop(shard);
        self.inner.requeue(&record, filed);
        self.inner.events.send(StorageEvent::JobsReady);
        Ok(())
    }

    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError> {
        let mut shard = lock(self.inner.shard(id));
        let outcome = match shard.job(id)?.status() {
            JobState::Pending => {
                let mut record = shard.record(id)?;
                let commit = cancel_commit(&record, now, reason);
                shard.commit_into(commit, &mut record)?;
                CancelOutcome::Cancelled(Box::new(record))
            }
            JobState::Running => {
                shard.job(id)?.request_cancel(reason);
                CancelOutcome::Requested
            }
            finished => CancelOutcome::AlreadyFinished(finished),
        };
        drop(shard);
        if matches!(outcome, CancelOutcome::Cancelled(_)) {
            self.inner.events.send(StorageEvent::JobChanged(id));
        }
        Ok(outcome)
    }

    async fn counts(&self) -> Result<Vec<CountRow>, StorageError> {
        // Every shard at once, for a consistent count (shards are always
        // locked in index order, and never with the index lock held here).
        let shards: Vec<_> = self.inner.shards.iter().map(lock).collect();
        Ok(CountRow::tally_names(shards.iter().flat_map(|s| {
            s.jobs.values().map(|job| JobNames {
                machine: s.names.get(job.machine()),
                queue: s.names.get(job.queue()),
                state: s.names.get(job.state()),
                status: job.status(),
            })
        })))
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError> {
        let mut index = self.inner.index.lock();
        let was = if paused {
            !index.paused.insert(queue.to_owned())
        } else {
            index.paused.remove(queue)
        };
        drop(index);
        if was && !paused {
            self.inner.events.send(StorageEvent::JobsReady);
        }
        Ok(was)
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.inner.index.lock().paused.iter().cloned().collect())
    }

    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError> {
        let mut keys = lock(&self.inner.keys);
        let mut shard = lock(self.inner.shard(id));
        let job = shard.jobs.get(&id).ok_or(StorageError::NotFound(id))?;
        let status = job.status();
        if !status.is_finished() {
            return Ok(DeleteOutcome::NotFinished(status));
        }
        if let Some(key) = job.idempotency_key() {
            keys.remove(key);
        }
        shard.jobs.remove(&id);
        drop((shard, keys));
        self.inner.events.send(StorageEvent::JobChanged(id));
        Ok(DeleteOutcome::Deleted)
    }

    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError> {
        status.expect_finished()?;
        let mut keys = lock(&self.inner.keys);
        let mut pruned = 0;
        for shard in &self.inner.shards {
            lock(shard).jobs.retain(|_, job| {
                let gone = pruned < limit && job.status() == status && job.updated_at() < before;
                if gone {
                    pruned += 1;
                    if let Some(key) = job.idempotency_key() {
                        keys.remove(key);
                    }
                }
                !gone
            });
            if pruned == limit {
                break;
            }
        }
        Ok(u64::try_from(pruned).unwrap_or(u64::MAX))
    }

    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError> {
        Ok(lock(&self.inner.duties).try_take(duty, owner, now, ttl_ms))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new().cheap_claims()
    }

    fn subscribe(&self) -> broadcast::Receiver<StorageEvent> {
        self.inner.events.subscribe()
    }

    fn subscribe_ready(&self) -> broadcast::Receiver<StorageEvent> {
        self.inner.events.subscribe_ready()
    }
}

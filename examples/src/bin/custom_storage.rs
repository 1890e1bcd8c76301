//! A storage backend written from scratch: the original description's
//! "Custom Storage Backend". It keeps every job behind one lock, the
//! simplest correct design, and proves itself with the conformance suite
//! that every built-in backend runs, then runs a job on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use runekernel::job::Job;
use runekernel::storage::{
    cancel_commit, check_payload_depth, CancelOutcome, ClaimRequest, Commit, Committed, CountRow, DeleteOutcome,
    EventBus, Heartbeat, HistoryEntry, Inserted, JobFilter, JobId, JobPage, JobRecord, JobState, LeaseToken, ListOrder,
    Millis, NewJob, Outcome, Storage, StorageError, StorageEvent,
};
use runekernel::Runtime;
use tokio::sync::broadcast;

/// Every job in one map behind one lock.
#[derive(Default)]
struct SingleLockStorage {
    state: Mutex<State>,
    events: EventBus,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<JobId, (JobRecord, Vec<HistoryEntry>)>,
    keys: HashMap<String, JobId>,
    next_token: u64,
    /// Each duty's holder and when its hold runs out.
    duties: HashMap<String, (String, Millis)>,
    /// The paused queues.
    paused: std::collections::BTreeSet<String>,
}

impl SingleLockStorage {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn insert(&mut self, job: &NewJob) -> Result<Inserted, StorageError> {
        if let Some(id) = job.idempotency_key.as_ref().and_then(|k| self.keys.get(k)) {
            return Ok(Inserted {
                id: *id,
                created: false,
            });
        }
        if self.jobs.contains_key(&job.id) {
            return Err(StorageError::DuplicateId(job.id));
        }
        let record = JobRecord::from_new(job);
        let entry = job.submission_entry();
        self.jobs.insert(job.id, (record, vec![entry]));
        if let Some(key) = &job.idempotency_key {
            self.keys.insert(key.clone(), job.id);
        }
        Ok(Inserted {
            id: job.id,
            created: true,
        })
    }

    fn token(&mut self) -> LeaseToken {
        self.next_token += 1;
        LeaseToken(self.next_token)
    }

    fn leased(&mut self, id: JobId, lease: LeaseToken, now: Millis) -> Result<&mut JobRecord, StorageError> {
        let (record, _) = self.jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
        record.check_lease(lease, now)?;
        Ok(record)
    }
}

#[async_trait]
impl Storage for SingleLockStorage {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StorageError> {
        job.check()?;
        let inserted = self.lock().insert(&job)?;
        self.events.send(StorageEvent::JobsReady);
        Ok(inserted)
    }

    async fn insert_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StorageError> {
        jobs.iter().try_for_each(NewJob::check)?;
        let mut state = self.lock();
        let mut ids = std::collections::HashSet::new();
        if let Some(dup) = jobs
            .iter()
            .find(|j| !ids.insert(j.id) || state.jobs.contains_key(&j.id))
        {
            return Err(StorageError::DuplicateId(dup.id));
        }
        let out = jobs.iter().map(|j| state.insert(j)).collect::<Result<Vec<_>, _>>()?;
        drop(state);
        self.events.send(StorageEvent::JobsReady);
        Ok(out)
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StorageError> {
        Ok(self.lock().jobs.get(&id).map(|(r, _)| r.clone()))
    }

    async fn list_ordered(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: usize,
        order: ListOrder,
    ) -> Result<JobPage, StorageError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let state = self.lock();
        let range = match (after, order) {
            (None, _) => (Unbounded, Unbounded),
            (Some(a), ListOrder::OldestFirst) => (Excluded(a), Unbounded),
            (Some(a), ListOrder::NewestFirst) => (Unbounded, Excluded(a)),
        };
        let in_range = state.jobs.range(range).map(|(_, (r, _))| r);
        let ordered: Box<dyn Iterator<Item = &JobRecord>> = match order {
            ListOrder::OldestFirst => Box::new(in_range),
            ListOrder::NewestFirst => Box::new(in_range.rev()),
        };
        let jobs: Vec<JobRecord> = ordered
            .filter(|r| filter.matches(&r.machine, &r.queue, &r.state, r.status))
            .take(limit + 1)
            .cloned()
            .collect();
        Ok(JobPage::from_fetched(jobs, limit))
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<JobRecord>, StorageError> {
        let mut state = self.lock();
        if state.paused.contains(&request.queue) {
            return Ok(Vec::new());
        }
        let mut ready: Vec<(i32, Millis, JobId)> = state
            .jobs
            .values()
            .map(|(r, _)| r)
            .filter(|r| r.queue == request.queue && request.machines.contains(&r.machine))
            .filter(|r| r.is_claimable(request.now))
            .map(|r| (r.priority, r.run_at, r.id))
            .collect();
        ready.sort();
        ready.truncate(request.limit);
        let mut claimed = Vec::with_capacity(ready.len());
        for (_, _, id) in ready {
            let token = state.token();
            let Some((record, history)) = state.jobs.get_mut(&id) else {
                continue;
            };
            // A payload nested deeper than a runtime could read back (one
            // written by a writer that did not check it) fails its job
            // alone, instead of being handed out again and again.
            if let Err(error) = check_payload_depth(&record.payload) {
                let failed = Outcome::Failed {
                    error: error.to_string(),
                };
                let commit = Commit::unleased(record, request.now, None, failed);
                history.push(record.apply(&commit));
                continue;
            }
            record.claim(&request.worker, token, request.now, request.lease_ms);
            claimed.push(record.clone());
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
        let mut state = self.lock();
        let token = state.token();
        let (record, _) = state.jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
        if record.status != JobState::Pending && !record.is_claimable(now) {
            return Ok(None);
        }
        record.claim(worker, token, now, lease_ms);
        Ok(Some(record.clone()))
    }

    async fn commit_batch(&self, commits: &[Commit]) -> Result<Vec<Result<Committed, StorageError>>, StorageError> {
        let mut state = self.lock();
        let results: Vec<Result<Committed, StorageError>> = commits
            .iter()
            .map(|commit| {
                let (record, history) = state
                    .jobs
                    .get_mut(&commit.id)
                    .ok_or(StorageError::NotFound(commit.id))?;
                record.check_commit(commit)?;
                history.push(record.apply(commit));
                Ok(Committed::of(record))
            })
            .collect();
        drop(state);
        for (commit, result) in commits.iter().zip(&results) {
            if result.is_ok() {
                self.events.send(StorageEvent::JobChanged(commit.id));
                if commit.status() == JobState::Pending {
                    self.events.send(StorageEvent::JobsReady);
                }
            }
        }
        Ok(results)
    }

    async fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        Ok(self.lock().jobs.get(&id).map(|(_, h)| h.clone()).unwrap_or_default())
    }

    async fn heartbeat_batch(
        &self,
        leases: Vec<(JobId, LeaseToken)>,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<Result<Heartbeat, StorageError>>, StorageError> {
        let mut state = self.lock();
        Ok(leases
            .into_iter()
            .map(|(id, lease)| Ok(state.leased(id, lease, now)?.extend_lease(now, lease_ms)))
            .collect())
    }

    async fn release(&self, id: JobId, lease: LeaseToken, now: Millis) -> Result<(), StorageError> {
        self.lock().leased(id, lease, now)?.release(now);
        self.events.send(StorageEvent::JobsReady);
        Ok(())
    }

    async fn cancel(&self, id: JobId, now: Millis, reason: Option<String>) -> Result<CancelOutcome, StorageError> {
        let mut state = self.lock();
        let (record, history) = state.jobs.get_mut(&id).ok_or(StorageError::NotFound(id))?;
        Ok(match record.status {
            JobState::Pending => {
                history.push(record.apply(&cancel_commit(record, now, reason)));
                self.events.send(StorageEvent::JobChanged(id));
                CancelOutcome::Cancelled(Box::new(record.clone()))
            }
            JobState::Running => {
                record.request_cancel(reason);
                CancelOutcome::Requested
            }
            finished => CancelOutcome::AlreadyFinished(finished),
        })
    }

    async fn counts(&self) -> Result<Vec<CountRow>, StorageError> {
        Ok(CountRow::tally(self.lock().jobs.values().map(|(record, _)| record)))
    }

    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StorageError> {
        let mut state = self.lock();
        let (record, _) = state.jobs.get(&id).ok_or(StorageError::NotFound(id))?;
        if !record.status.is_finished() {
            return Ok(DeleteOutcome::NotFinished(record.status));
        }
        if let Some((record, _)) = state.jobs.remove(&id) {
            if let Some(key) = record.idempotency_key {
                state.keys.remove(&key);
            }
        }
        drop(state);
        self.events.send(StorageEvent::JobChanged(id));
        Ok(DeleteOutcome::Deleted)
    }

    async fn prune_batch(&self, status: JobState, before: Millis, limit: usize) -> Result<u64, StorageError> {
        status.expect_finished()?;
        let mut state = self.lock();
        let gone: Vec<JobId> = state
            .jobs
            .values()
            .filter(|(r, _)| r.status == status && r.updated_at < before)
            .map(|(r, _)| r.id)
            .take(limit)
            .collect();
        for id in &gone {
            if let Some((record, _)) = state.jobs.remove(id) {
                if let Some(key) = record.idempotency_key {
                    state.keys.remove(&key);
                }
            }
        }
        Ok(gone.len() as u64)
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<bool, StorageError> {
        let mut state = self.lock();
        Ok(if paused {
            !state.paused.insert(queue.to_owned())
        } else {
            state.paused.remove(queue)
        })
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.lock().paused.iter().cloned().collect())
    }

    async fn try_duty(&self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> Result<bool, StorageError> {
        let mut state = self.lock();
        let free = match state.duties.get(duty) {
            Some((holder, until)) => holder == owner || *until <= now,
            None => true,
        };
        if free {
            let until = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
            state.duties.insert(duty.to_owned(), (owner.to_owned(), until));
        }
        Ok(free)
    }

    fn subscribe(&self) -> broadcast::Receiver<StorageEvent> {
        self.events.subscribe()
    }

    fn subscribe_ready(&self) -> broadcast::Receiver<StorageEvent> {
        self.events.subscribe_ready()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One line proves the backend keeps every promise of the trait.
    runekernel::storage::testing::conformance(|| async { SingleLockStorage::default() }).await;
    println!(
        "SingleLockStorage passes all {} conformance checks",
        runekernel::storage::testing::CHECKS.len()
    );

    let rt = Runtime::builder().storage(SingleLockStorage::default()).build().await?;
    let id = rt.submit_job(Job::new()).await?;
    println!("job {id} is {}", rt.wait_record(id).await?.status);
    rt.shutdown().await?;
    Ok(())
}

//! How [`InMemoryStorage`](super::InMemoryStorage) keeps a job: compactly,
//! since one store may hold millions of pending jobs. Machine, state and
//! worker names are interned per shard, the payload is kept as JSON text,
//! the lease and the rarely set fields are boxed, and the history
//! (`history.rs`) is not stored until the first commit appends to it (until
//! then its one entry, the submission, is built from the job).
//!
//! Operations read a full [`JobRecord`] with [`StoredJob::record`], run the
//! same logic as every backend on it, and write it back with
//! [`StoredJob::update`] (or [`StoredJob::record_commit`], which also
//! appends the commit's history entry).

use std::sync::Arc;

use serde_json::Value;

use crate::error::StorageError;
use crate::model::{Commit, HistoryEntry, JobRecord, Lease, LeaseToken, Millis, NewJob};
use crate::{JobId, JobState};

use super::history::StoredEntry;
use super::names::Names;

/// One job, as the in-memory store keeps it.
pub(super) struct StoredJob {
    machine: Arc<str>,
    state: Arc<str>,
    /// The current state's fields, as JSON text.
    payload: Box<str>,
    fingerprint: u64,
    status: JobState,
    priority: i32,
    run_at: Millis,
    attempts: u32,
    max_attempts: u32,
    lease: Option<Box<StoredLease>>,
    version: u64,
    cancel_requested: bool,
    created_at: Millis,
    updated_at: Millis,
    /// `None` while every field in it is unset.
    extras: Option<Box<Extras>>,
    /// `None` until the first commit, which stores the submission entry
    /// before its own. Boxed: one pointer, not three words, in each of the
    /// many jobs that have no history yet.
    #[allow(clippy::box_collection)]
    history: Option<Box<Vec<StoredEntry>>>,
}

/// A running job's lease, its owner's name interned.
#[derive(PartialEq)]
struct StoredLease {
    owner: Arc<str>,
    token: LeaseToken,
    expires_at: Millis,
}

impl StoredLease {
    fn read(&self) -> Lease {
        Lease {
            owner: self.owner.to_string(),
            token: self.token,
            expires_at: self.expires_at,
        }
    }
}

/// The fields most jobs leave unset.
#[derive(Default, PartialEq)]
struct Extras {
    timeout_ms: Option<u64>,
    idempotency_key: Option<Box<str>>,
    last_error: Option<Box<str>>,
}

impl Extras {
    /// `None` when every field is unset.
    fn boxed(self) -> Option<Box<Extras>> {
        (self != Extras::default()).then(|| Box::new(self))
    }
}

impl StoredJob {
    /// A freshly inserted job.
    pub(super) fn new(job: &NewJob, names: &mut Names) -> Self {
        StoredJob {
            machine: names.intern(&job.machine),
            state: names.intern(&job.state),
            payload: job.payload.to_string().into_boxed_str(),
            fingerprint: job.fingerprint,
            status: JobState::Pending,
            priority: job.priority,
            run_at: job.run_at,
            attempts: 0,
            max_attempts: job.max_attempts,
            lease: None,
            version: 0,
            cancel_requested: false,
            created_at: job.created_at,
            updated_at: job.created_at,
            extras: Extras {
                timeout_ms: job.timeout_ms,
                idempotency_key: job.idempotency_key.as_deref().map(Box::from),
                last_error: None,
            }
            .boxed(),
            history: None,
        }
    }

    pub(super) fn machine(&self) -> &Arc<str> {
        &self.machine
    }

    pub(super) fn state(&self) -> &str {
        &self.state
    }

    pub(super) fn status(&self) -> JobState {
        self.status
    }

    pub(super) fn priority(&self) -> i32 {
        self.priority
    }

    pub(super) fn run_at(&self) -> Millis {
        self.run_at
    }

    pub(super) fn updated_at(&self) -> Millis {
        self.updated_at
    }

    pub(super) fn idempotency_key(&self) -> Option<&str> {
        self.extras.as_ref()?.idempotency_key.as_deref()
    }

    fn last_error(&self) -> Option<&str> {
        self.extras.as_ref()?.last_error.as_deref()
    }

    /// When the current lease runs out, while running.
    pub(super) fn lease_expires_at(&self) -> Option<Millis> {
        self.lease.as_ref().map(|l| l.expires_at)
    }

    /// The full record of job `id`.
    pub(super) fn record(&self, id: JobId) -> Result<JobRecord, StorageError> {
        self.record_for(id, false)
    }

    /// The record of job `id` for an operation; `replaces_payload`: it will
    /// overwrite the payload, which is then not read (a `null` stands in).
    pub(super) fn record_for(&self, id: JobId, replaces_payload: bool) -> Result<JobRecord, StorageError> {
        let payload = if replaces_payload {
            Value::Null
        } else {
            parse(id, &self.payload)?
        };
        Ok(JobRecord {
            id,
            machine: self.machine.to_string(),
            fingerprint: self.fingerprint,
            state: self.state.to_string(),
            payload,
            status: self.status,
            priority: self.priority,
            run_at: self.run_at,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            timeout_ms: self.extras.as_ref().and_then(|e| e.timeout_ms),
            lease: self.lease.as_deref().map(StoredLease::read),
            version: self.version,
            idempotency_key: self.idempotency_key().map(str::to_owned),
            cancel_requested: self.cancel_requested,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_error: self.last_error().map(str::to_owned),
        })
    }

    /// Takes back what an operation changed in `record`. `state_changed`:
    /// whether its state and payload may differ from the stored ones (only
    /// then is the payload written out again).
    pub(super) fn update(
        &mut self,
        record: &JobRecord,
        state_changed: bool,
        names: &mut Names,
    ) -> Result<(), StorageError> {
        if state_changed {
            let payload = serde_json::to_string(&record.payload).map_err(StorageError::backend)?;
            if *self.state != *record.state {
                self.state = names.intern(&record.state);
            }
            self.payload = payload.into_boxed_str();
            self.fingerprint = record.fingerprint;
        }
        self.status = record.status;
        self.run_at = record.run_at;
        self.attempts = record.attempts;
        match (&mut self.lease, &record.lease) {
            // The same worker's lease, extended or renewed: no allocation.
            (Some(stored), Some(lease)) if *stored.owner == *lease.owner => {
                stored.token = lease.token;
                stored.expires_at = lease.expires_at;
            }
            (stored, lease) => {
                *stored = lease.as_ref().map(|lease| {
                    Box::new(StoredLease {
                        owner: names.intern(&lease.owner),
                        token: lease.token,
                        expires_at: lease.expires_at,
                    })
                });
            }
        }
        self.version = record.version;
        self.cancel_requested = record.cancel_requested;
        self.updated_at = record.updated_at;
        if self.last_error() != record.last_error.as_deref() {
            let extras = self.extras.take().map(|e| *e).unwrap_or_default();
            self.extras = Extras {
                last_error: record.last_error.as_deref().map(Box::from),
                ..extras
            }
            .boxed();
        }
        Ok(())
    }

    /// Marks a running job's cancellation as requested.
    pub(super) fn request_cancel(&mut self) {
        self.cancel_requested = true;
    }

    /// Writes back `record`, which `commit` (checked) was applied to, and
    /// appends the commit's history entry, after the submission entry if
    /// this is the first commit.
    pub(super) fn record_commit(
        &mut self,
        record: &JobRecord,
        commit: &Commit,
        names: &mut Names,
    ) -> Result<(), StorageError> {
        let from = Arc::clone(&self.state);
        // Usually the lease holder commits: its name is interned already.
        let worker = match (&self.lease, commit.worker.as_deref()) {
            (Some(lease), Some(worker)) if *lease.owner == *worker => Some(Arc::clone(&lease.owner)),
            (_, worker) => worker.map(|worker| names.intern(worker)),
        };
        let submission = self
            .history
            .is_none()
            .then(|| StoredEntry::submission(&self.state, &self.payload, self.created_at));
        self.update(record, commit.change.is_some(), names)?;
        let entry = StoredEntry::commit(from, &self.state, self.status, &self.payload, commit, worker);
        let history = self.history.get_or_insert_default();
        history.extend(submission);
        history.push(entry);
        Ok(())
    }

    /// The job's history.
    pub(super) fn history(&self, id: JobId) -> Result<Vec<HistoryEntry>, StorageError> {
        match &self.history {
            Some(history) => (0u64..)
                .zip(history.iter())
                .map(|(seq, entry)| entry.read(id, seq))
                .collect(),
            None => Ok(vec![self.record(id)?.submission_entry()]),
        }
    }
}

/// Reads a stored payload of job `id` back.
pub(super) fn parse(id: JobId, payload: &str) -> Result<Value, StorageError> {
    serde_json::from_str(payload).map_err(|e| StorageError::Corrupt {
        id,
        message: format!("stored payload: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(payload: Value) -> NewJob {
        NewJob {
            id: JobId::new(),
            machine: "m".into(),
            fingerprint: 3,
            state: "Start".into(),
            payload,
            priority: 0,
            run_at: 0,
            max_attempts: 5,
            timeout_ms: None,
            idempotency_key: Some("k".into()),
            created_at: 7,
        }
    }

    #[test]
    fn a_stored_job_reads_back_as_inserted() {
        let payload = serde_json::json!({ "n": u64::MAX, "neg": -3, "f": 0.1, "s": "a\u{0}b", "list": [1, null] });
        let new = job(payload);
        let mut names = Names::default();
        let stored = StoredJob::new(&new, &mut names);
        let record = stored.record(new.id).unwrap();
        assert_eq!(record, JobRecord::from_new(&new));
        assert_eq!(stored.history(new.id).unwrap(), vec![record.submission_entry()]);
    }

    #[test]
    fn names_are_shared_within_a_shard() {
        let mut names = Names::default();
        let (a, b) = (job(Value::Null), job(Value::Null));
        let (a, b) = (StoredJob::new(&a, &mut names), StoredJob::new(&b, &mut names));
        assert!(Arc::ptr_eq(a.machine(), b.machine()));
        assert!(Arc::ptr_eq(&a.state, &b.state));
    }
}

//! How [`InMemoryStorage`](super::InMemoryStorage) keeps a job: compactly,
//! since one store may hold millions of pending jobs. Machine, queue, state
//! and worker names are interned per shard, the payload is kept as JSON text,
//! the lease and the rarely set fields are boxed, and the history
//! (`history.rs`) is not stored until the first commit appends to it (until
//! then its one entry, the submission, is built from the job).
//!
//! The payload is stored once: in the job until its first commit, then in
//! the latest history entry (every commit appends one, with the payload it
//! leaves), so a state change stores its new payload with one allocation.
//!
//! Operations read a full [`JobRecord`] with [`StoredJob::record`] (a
//! commit refreshes the caller's with [`StoredJob::read_into`]), run the
//! same logic as every backend on it, and write it back with
//! [`StoredJob::update`] (or [`StoredJob::record_commit`], which also
//! appends the commit's history entry).

use std::cell::RefCell;

use serde_json::Value;

use crate::commit::Commit;
use crate::error::StorageError;
use crate::model::{HistoryEntry, JobRecord, Lease, LeaseToken, Millis, NewJob};
use crate::{JobId, JobState};

use super::history::StoredEntry;
use super::names::{Name, Names};

/// One job, as the in-memory store keeps it.
pub(super) struct StoredJob {
    machine: Name,
    queue: Name,
    state: Name,
    /// The submitted state's fields, as JSON text; empty once the job has a
    /// history, whose latest entry holds the current ones.
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
    owner: Name,
    token: LeaseToken,
    expires_at: Millis,
    /// When the store's lease index expects it to run out: its expiry when
    /// it was taken, or when that entry came due. Extending the lease leaves
    /// it, so the index is not touched at every step and heartbeat; an entry
    /// that comes due before the lease has run out is filed again
    /// ([`StoredJob::lease_due`]).
    filed: Millis,
}

/// What a lease index entry that has come due says of its job.
pub(super) enum LeaseDue {
    /// The lease ran out: the job can be claimed again.
    Expired,
    /// The lease was extended: file it again at its new expiry.
    Extended(Millis),
    /// The entry is not the job's current one: drop it.
    Stale,
}

impl StoredLease {
    fn read(&self, names: &Names) -> Lease {
        Lease {
            owner: names.get(self.owner).to_owned(),
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
    /// Who submitted it, until its submission entry is stored.
    submitted_by: Option<Box<str>>,
    cancel_reason: Option<Box<str>>,
}

impl Extras {
    /// `None` when every field is unset.
    fn boxed(self) -> Option<Box<Extras>> {
        (self != Extras::default()).then(|| Box::new(self))
    }
}

impl StoredJob {
    /// A freshly inserted job.
    ///
    /// # Errors
    /// When the shard has no room for a new name ([`Names::intern`]).
    pub(super) fn new(job: &NewJob, names: &mut Names) -> Result<Self, StorageError> {
        Ok(StoredJob {
            machine: names.intern(&job.machine)?,
            queue: names.intern(&job.queue)?,
            state: names.intern(&job.state)?,
            payload: json_text(&job.payload)?,
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
                submitted_by: job.submitted_by.as_deref().map(Box::from),
                cancel_reason: None,
            }
            .boxed(),
            history: None,
        })
    }

    pub(super) fn machine(&self) -> Name {
        self.machine
    }

    pub(super) fn queue(&self) -> Name {
        self.queue
    }

    pub(super) fn state(&self) -> Name {
        self.state
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

    fn submitted_by(&self) -> Option<&str> {
        self.extras.as_ref()?.submitted_by.as_deref()
    }

    fn cancel_reason(&self) -> Option<&str> {
        self.extras.as_ref()?.cancel_reason.as_deref()
    }

    /// Changes the rarely set fields with `change`, boxing them only while
    /// one is set.
    fn change_extras(&mut self, change: impl FnOnce(&mut Extras)) {
        let mut extras = self.extras.take().map(|e| *e).unwrap_or_default();
        change(&mut extras);
        self.extras = extras.boxed();
    }

    /// Where the store's lease index files this job's lease, while it
    /// holds one (see `StoredLease::filed`).
    pub(super) fn filed_lease(&self) -> Option<Millis> {
        self.lease.as_ref().map(|l| l.filed)
    }

    /// Reads the lease index entry `at`, come due by `now`, against this job;
    /// an extended lease is filed again at its expiry.
    pub(super) fn lease_due(&mut self, at: Millis, now: Millis) -> LeaseDue {
        match self.lease.as_deref_mut() {
            Some(lease) if self.status == JobState::Running && lease.filed == at => {
                if lease.expires_at <= now {
                    LeaseDue::Expired
                } else {
                    lease.filed = lease.expires_at;
                    LeaseDue::Extended(lease.expires_at)
                }
            }
            _ => LeaseDue::Stale,
        }
    }

    /// The full record of job `id`, its names read from `names`.
    pub(super) fn record(&self, id: JobId, names: &Names) -> Result<JobRecord, StorageError> {
        let mut record = JobRecord::blank(id);
        self.read_into(&mut record, true, names)?;
        Ok(record)
    }

    /// Writes the job as stored into `record` (of this job), reusing the
    /// strings it holds where they match already: a running job's record is
    /// refreshed at every step. `with_state`: its state and payload too;
    /// without, they are left for a commit that replaces them. On error
    /// (a payload that does not parse) `record` is unchanged.
    pub(super) fn read_into(
        &self,
        record: &mut JobRecord,
        with_state: bool,
        names: &Names,
    ) -> Result<(), StorageError> {
        if with_state {
            record.payload = parse(record.id, self.payload())?;
            set(&mut record.state, names.get(self.state));
        }
        set(&mut record.machine, names.get(self.machine));
        set(&mut record.queue, names.get(self.queue));
        record.fingerprint = self.fingerprint;
        record.status = self.status;
        record.priority = self.priority;
        record.run_at = self.run_at;
        record.attempts = self.attempts;
        record.max_attempts = self.max_attempts;
        record.timeout_ms = self.extras.as_ref().and_then(|e| e.timeout_ms);
        match (&mut record.lease, self.lease.as_deref()) {
            (Some(lease), Some(stored)) => {
                set(&mut lease.owner, names.get(stored.owner));
                lease.token = stored.token;
                lease.expires_at = stored.expires_at;
            }
            (lease, stored) => *lease = stored.map(|stored| stored.read(names)),
        }
        record.version = self.version;
        set_optional(&mut record.idempotency_key, self.idempotency_key());
        record.cancel_requested = self.cancel_requested;
        set_optional(&mut record.cancel_reason, self.cancel_reason());
        record.created_at = self.created_at;
        record.updated_at = self.updated_at;
        set_optional(&mut record.last_error, self.last_error());
        Ok(())
    }

    /// Checks `commit` against the job as stored, as
    /// [`JobRecord::check_commit`] does, without reading names or payload.
    pub(super) fn check_commit(&self, id: JobId, commit: &Commit) -> Result<(), StorageError> {
        let lease = self.lease.as_deref().map(|lease| Lease {
            // The check reads the token and expiry, not the owner.
            owner: String::new(),
            token: lease.token,
            expires_at: lease.expires_at,
        });
        JobRecord {
            version: self.version,
            status: self.status,
            lease,
            ..JobRecord::blank(id)
        }
        .check_commit(commit)
    }

    /// The current state's fields, as JSON text.
    fn payload(&self) -> &str {
        match self.history.as_deref().and_then(|h| h.last()) {
            Some(latest) => latest.payload(),
            None => &self.payload,
        }
    }

    /// Takes back what an operation changed in `record`'s lifecycle: all
    /// but its state and payload, which only a commit changes.
    ///
    /// # Errors
    /// When the shard has no room for a new worker's name; nothing is
    /// changed then.
    pub(super) fn update(&mut self, record: &JobRecord, names: &mut Names) -> Result<(), StorageError> {
        // The lease first: interning a new owner's name is all that can fail.
        match (&mut self.lease, &record.lease) {
            // The same worker's lease, extended or renewed: no allocation.
            (Some(stored), Some(lease)) if names.get(stored.owner) == lease.owner => {
                // A new lease (a new claim) is filed at its expiry; so is an
                // expiry moved earlier, which the index must not miss.
                if stored.token != lease.token || lease.expires_at < stored.filed {
                    stored.filed = lease.expires_at;
                }
                stored.token = lease.token;
                stored.expires_at = lease.expires_at;
            }
            (stored, None) => *stored = None,
            (stored, Some(lease)) => {
                *stored = Some(Box::new(StoredLease {
                    owner: names.intern(&lease.owner)?,
                    token: lease.token,
                    expires_at: lease.expires_at,
                    filed: lease.expires_at,
                }));
            }
        }
        self.status = record.status;
        self.run_at = record.run_at;
        self.attempts = record.attempts;
        self.version = record.version;
        self.cancel_requested = record.cancel_requested;
        self.updated_at = record.updated_at;
        if self.last_error() != record.last_error.as_deref() || self.cancel_reason() != record.cancel_reason.as_deref()
        {
            self.change_extras(|extras| {
                extras.last_error = record.last_error.as_deref().map(Box::from);
                extras.cancel_reason = record.cancel_reason.as_deref().map(Box::from);
            });
        }
        Ok(())
    }

    /// Marks a running job's cancellation as requested, with `reason` if
    /// given; the first reason given stands.
    pub(super) fn request_cancel(&mut self, reason: Option<String>) {
        self.cancel_requested = true;
        if let (None, Some(reason)) = (self.cancel_reason(), reason) {
            self.change_extras(|extras| extras.cancel_reason = Some(reason.into()));
        }
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
        // Usually the lease holder commits: its name is interned already.
        let worker = match (&self.lease, commit.worker.as_deref()) {
            (Some(lease), Some(worker)) if names.get(lease.owner) == worker => Some(lease.owner),
            (_, worker) => worker.map(|worker| names.intern(worker)).transpose()?,
        };
        let changed = commit.outcome.change().is_some();
        let state = if changed && names.get(self.state) != record.state {
            names.intern(&record.state)?
        } else {
            self.state
        };
        let payload = if changed {
            json_text(&record.payload)?
        } else {
            Box::from(self.payload())
        };
        let attempt = self.attempts;
        if self.history.is_none() {
            let by = self.submitted_by().map(|by| names.intern(by)).transpose()?;
            // The first commit moves the submitted payload, and who
            // submitted it, into its entry.
            let submitted = std::mem::take(&mut self.payload);
            if by.is_some() {
                self.change_extras(|extras| extras.submitted_by = None);
            }
            // Room for a few steps: most jobs have few.
            let mut history = Vec::with_capacity(4);
            history.push(StoredEntry::submission(self.state, submitted, self.created_at, by));
            self.history = Some(Box::new(history));
        }
        self.update(record, names)?;
        if changed {
            self.state = state;
            self.fingerprint = record.fingerprint;
        }
        let entry = StoredEntry::commit((self.state, self.status, payload), attempt, commit, worker);
        self.history.get_or_insert_default().push(entry);
        Ok(())
    }

    /// The job's history, its names read from `names`.
    pub(super) fn history(&self, id: JobId, names: &Names) -> Result<Vec<HistoryEntry>, StorageError> {
        match &self.history {
            Some(history) => {
                // Each entry came from the state the one before it reached.
                let from = std::iter::once(None).chain(history.iter().map(|entry| Some(entry.to())));
                (0u64..)
                    .zip(history.iter().zip(from))
                    .map(|(seq, (entry, from))| entry.read(id, seq, from, names))
                    .collect()
            }
            None => {
                let record = self.record(id, names)?;
                let by = self.submitted_by().map(str::to_owned);
                Ok(vec![crate::model::submission(
                    &record.state,
                    record.payload,
                    record.created_at,
                    by,
                )])
            }
        }
    }
}

/// `value` as JSON text in a box of its own size: written to a buffer kept
/// by the thread, then copied once, where `serde_json::to_string` would grow
/// a `String` and shrink it again.
fn json_text(value: &Value) -> Result<Box<str>, StorageError> {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        serde_json::to_writer(&mut *buffer, value).map_err(StorageError::backend)?;
        let text = std::str::from_utf8(buffer).map_err(StorageError::backend)?;
        Ok(Box::from(text))
    })
}

/// Sets `target` to `value`, keeping its allocation when they are equal.
fn set(target: &mut String, value: &str) {
    if *target != *value {
        value.clone_into(target);
    }
}

/// [`set`] for a field that may be unset.
fn set_optional(target: &mut Option<String>, value: Option<&str>) {
    match (target.as_mut(), value) {
        (Some(target), Some(value)) => set(target, value),
        (_, value) => *target = value.map(str::to_owned),
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
            queue: "q".into(),
            fingerprint: 3,
            state: "Start".into(),
            payload,
            priority: 0,
            run_at: 0,
            max_attempts: 5,
            timeout_ms: None,
            idempotency_key: Some("k".into()),
            created_at: 7,
            submitted_by: None,
        }
    }

    #[test]
    fn a_stored_job_reads_back_as_inserted() {
        let payload = serde_json::json!({ "n": u64::MAX, "neg": -3, "f": 0.1, "s": "a\u{0}b", "list": [1, null] });
        let new = job(payload);
        let mut names = Names::default();
        let stored = StoredJob::new(&new, &mut names).unwrap();
        let record = stored.record(new.id, &names).unwrap();
        assert_eq!(record, JobRecord::from_new(&new));
        assert_eq!(stored.history(new.id, &names).unwrap(), vec![new.submission_entry()]);
    }

    /// A pending job's commit (no lease) by worker `w` at time `now`;
    /// `change`: to state `B` with `{"n": 2}`, or a retry in place.
    fn commit(record: &JobRecord, change: bool, now: Millis) -> Commit {
        let outcome = if change {
            crate::commit::Outcome::Advanced {
                to: crate::commit::StateChange {
                    state: "B".into(),
                    payload: serde_json::json!({ "n": 2 }),
                    fingerprint: 3,
                },
                run_at: now,
            }
        } else {
            crate::commit::Outcome::Retrying {
                run_at: now,
                error: "again".into(),
            }
        };
        Commit::unleased(record, now, Some("w".into()), outcome)
    }

    #[test]
    fn the_payload_is_stored_once_and_every_entry_reads_back_its_own() {
        let new = job(serde_json::json!({ "n": 1 }));
        let mut names = Names::default();
        let mut stored = StoredJob::new(&new, &mut names).unwrap();
        for (change, now) in [(true, 8), (false, 9)] {
            let c = commit(&stored.record(new.id, &names).unwrap(), change, now);
            let mut record = stored.record(new.id, &names).unwrap();
            record.apply_to_record(&c);
            stored.record_commit(&record, &c, &mut names).unwrap();
        }
        assert!(stored.payload.is_empty(), "the history holds the payload");
        let record = stored.record(new.id, &names).unwrap();
        assert_eq!(
            (record.state.as_str(), record.payload),
            ("B", serde_json::json!({ "n": 2 }))
        );
        let history = stored.history(new.id, &names).unwrap();
        let read: Vec<_> = history
            .iter()
            .map(|e| (e.from.as_deref(), e.to.as_str(), e.payload.clone()))
            .collect();
        assert_eq!(
            read,
            [
                (None, "Start", serde_json::json!({ "n": 1 })),
                (Some("Start"), "B", serde_json::json!({ "n": 2 })),
                (Some("B"), "B", serde_json::json!({ "n": 2 })),
            ]
        );
    }

    #[test]
    fn names_are_shared_within_a_shard() {
        let mut names = Names::default();
        let (a, b) = (job(Value::Null), job(Value::Null));
        let (a, b) = (
            StoredJob::new(&a, &mut names).unwrap(),
            StoredJob::new(&b, &mut names).unwrap(),
        );
        assert_eq!((a.machine(), a.state()), (b.machine(), b.state()));
        assert_eq!((names.get(a.machine()), names.get(a.state())), ("m", "Start"));
    }
}

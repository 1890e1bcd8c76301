//! How [`InMemoryStorage`](super::InMemoryStorage) keeps a job's history:
//! one compact entry per commit, its state and worker names interned and its
//! payload kept as JSON text, turned into a [`HistoryEntry`] only when read.
//! A three-step job's history takes a few hundred bytes, not kilobytes of
//! strings and JSON trees, and a commit appends it with one allocation.

use crate::commit::Commit;
use crate::error::StorageError;
use crate::model::{HistoryEntry, Millis};
use crate::{JobId, JobState};

use super::names::{Name, Names};

/// One history entry; its `seq` is its place in the job's history, and the
/// state it came from the previous entry's `to` (none for the submission).
pub(super) struct StoredEntry {
    to: Name,
    status: JobState,
    attempt: u32,
    at: Millis,
    worker: Option<Name>,
    error: Option<Box<str>>,
    /// The machine state's fields after this entry, as JSON text.
    payload: Box<str>,
}

impl StoredEntry {
    /// The submission entry of a job inserted in `state` with `payload` by
    /// `by`.
    pub(super) fn submission(state: Name, payload: Box<str>, created_at: Millis, by: Option<Name>) -> Self {
        StoredEntry {
            to: state,
            status: JobState::Pending,
            attempt: 0,
            at: created_at,
            worker: by,
            error: None,
            payload,
        }
    }

    /// The entry of `commit` by `worker`, made at attempt `attempt`, which
    /// took the job to state `to` and lifecycle `status`, leaving it with
    /// `payload`.
    pub(super) fn commit(
        (to, status, payload): (Name, JobState, Box<str>),
        attempt: u32,
        commit: &Commit,
        worker: Option<Name>,
    ) -> Self {
        StoredEntry {
            to,
            status,
            attempt,
            at: commit.now,
            worker,
            error: commit.outcome.error().map(Box::from),
            payload,
        }
    }

    /// The machine state's fields after this entry, as JSON text.
    pub(super) fn payload(&self) -> &str {
        &self.payload
    }

    /// The state this entry took the job to.
    pub(super) fn to(&self) -> Name {
        self.to
    }

    /// The entry of job `id` at place `seq`, coming `from` the previous
    /// entry's state, as the storage API returns it.
    pub(super) fn read(
        &self,
        id: JobId,
        seq: u64,
        from: Option<Name>,
        names: &Names,
    ) -> Result<HistoryEntry, StorageError> {
        Ok(HistoryEntry {
            seq,
            from: from.map(|from| names.get(from).to_owned()),
            to: names.get(self.to).to_owned(),
            status: self.status,
            error: self.error.as_deref().map(str::to_owned),
            at: self.at,
            attempt: self.attempt,
            worker: self.worker.map(|worker| names.get(worker).to_owned()),
            payload: super::stored::parse(id, &self.payload)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::Outcome;
    use crate::model::JobRecord;

    #[test]
    fn an_entry_reads_back_as_committed() {
        let mut names = Names::default();
        let (from, to) = (names.intern("A").unwrap(), names.intern("B").unwrap());
        let job = JobRecord::from_new(&crate::model::NewJob::new(
            JobId::new(),
            "m",
            "A",
            serde_json::json!({}),
        ));
        let commit = Commit::unleased(
            &job,
            8,
            Some("w".into()),
            Outcome::Reopened {
                run_at: 9,
                reason: "slow".into(),
            },
        );
        let worker = Some(names.intern("w").unwrap());
        let entry = StoredEntry::commit((to, JobState::Pending, r#"{"n":1}"#.into()), 2, &commit, worker);
        assert_eq!(
            entry.read(commit.id, 3, Some(from), &names).unwrap(),
            HistoryEntry {
                seq: 3,
                from: Some("A".into()),
                to: "B".into(),
                status: JobState::Pending,
                error: Some("slow".into()),
                at: 8,
                attempt: 2,
                worker: Some("w".into()),
                payload: serde_json::json!({ "n": 1 }),
            }
        );
    }

    #[test]
    fn a_corrupt_payload_is_reported_with_its_job() {
        let mut names = Names::default();
        let id = JobId::new();
        let entry = StoredEntry::submission(names.intern("A").unwrap(), "{".into(), 0, None);
        assert!(matches!(entry.read(id, 0, None, &names), Err(StorageError::Corrupt { id: bad, .. }) if bad == id));
    }
}

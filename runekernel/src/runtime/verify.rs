//! Replays a job's history through its machine and checks that it
//! reproduces the stored job.

use crate::storage::JobId;

use super::{Inner, Result, RuntimeError};

pub(crate) async fn verify(rt: &Inner, id: JobId) -> Result<()> {
    let job = rt.storage.get(id).await?.ok_or(RuntimeError::NotFound(id))?;
    let machine = rt
        .registry
        .get(&job.machine)
        .ok_or_else(|| RuntimeError::UnknownMachine(job.machine.clone()))?;
    let def = machine.definition();
    let history = rt.storage.history(id).await?;
    let fail = |seq: u64, reason: String| RuntimeError::Replay { id, seq, reason };

    let Some(first) = history.first() else {
        return Err(fail(
            0,
            "the history is empty; it must start with the submission".to_owned(),
        ));
    };
    if first.seq != 0 || first.from.is_some() {
        return Err(fail(
            first.seq,
            "the first entry is not the submission (seq 0, no `from`)".to_owned(),
        ));
    }
    if first.to != def.initial().name {
        return Err(fail(
            0,
            format!(
                "the job was submitted in `{}`, but the initial state is `{}`",
                first.to,
                def.initial().name
            ),
        ));
    }
    for pair in history.windows(2) {
        let (previous, entry) = (&pair[0], &pair[1]);
        if entry.seq != previous.seq + 1 {
            return Err(fail(
                entry.seq,
                format!(
                    "entry {} follows entry {}: the history has a gap",
                    entry.seq, previous.seq
                ),
            ));
        }
        if entry.from.as_deref() != Some(previous.to.as_str()) {
            return Err(fail(
                entry.seq,
                format!(
                    "it starts from `{}`, but the job was in `{}`",
                    entry.from.as_deref().unwrap_or("nothing"),
                    previous.to
                ),
            ));
        }
        // A failed or cancelled job may be moved on by an admin; a completed
        // one sits in a terminal state and never moves again.
        if previous.status == crate::storage::JobState::Completed {
            return Err(fail(entry.seq, "the job had already completed".to_owned()));
        }
        if entry.to != previous.to || entry.payload != previous.payload {
            machine
                .check_move((&previous.to, &previous.payload), (&entry.to, &entry.payload))
                .map_err(|e| fail(entry.seq, e.to_string()))?;
        }
    }
    let last = history.last().unwrap_or(first);
    let mismatch = if last.seq != job.version {
        Some(format!(
            "the job is at version {}, but its history ends at entry {}",
            job.version, last.seq
        ))
    } else if last.to != job.state || last.payload != job.payload {
        Some(format!(
            "the history ends in `{}`, but the job is in `{}` (or its data differs)",
            last.to, job.state
        ))
    } else if (job.status.is_finished() || last.status.is_finished()) && last.status != job.status {
        // Claims and releases move between pending and running without an
        // entry, but every way to finish writes one.
        Some(format!(
            "the history ends {}, but the job is {}",
            last.status, job.status
        ))
    } else {
        None
    };
    match mismatch {
        Some(reason) => Err(fail(last.seq, reason)),
        None => Ok(()),
    }
}

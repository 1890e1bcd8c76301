//! Claims: order, readiness, machine filter, tokens and attempts, and no job
//! handed out twice under concurrency.

use std::collections::HashSet;
use std::sync::Arc;

use super::support::{claim_request, finish, new_job};
use crate::{JobState, Storage};

pub async fn claim_orders_by_priority_run_at_and_id(s: Arc<dyn Storage>) {
    // (priority, run_at) for each job; ids are increasing in insertion order.
    let specs = [(5, 0), (1, 30), (1, 10), (-3, 50), (1, 10), (0, 0)];
    let mut jobs = Vec::new();
    for (n, (priority, run_at)) in specs.into_iter().enumerate() {
        let mut job = new_job("m", n as u64);
        job.priority = priority;
        job.run_at = run_at;
        jobs.push(job.clone());
        s.insert(job).await.unwrap();
    }
    let mut expected = jobs.clone();
    expected.sort_by_key(|j| (j.priority, j.run_at, j.id));
    let mut order = Vec::new();
    // Claim one at a time, to see the order across calls too.
    for _ in 0..jobs.len() {
        let claimed = s.claim(claim_request(&["m"], 1, 100)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        order.push(claimed[0].id);
    }
    assert_eq!(order, expected.iter().map(|j| j.id).collect::<Vec<_>>());
    assert!(s.claim(claim_request(&["m"], 10, 100)).await.unwrap().is_empty());
}

pub async fn claim_skips_future_and_foreign_jobs(s: Arc<dyn Storage>) {
    let mut later = new_job("m", 1);
    later.run_at = 1_000;
    let other = new_job("other", 2);
    s.insert(later.clone()).await.unwrap();
    s.insert(other.clone()).await.unwrap();
    assert!(s.claim(claim_request(&["m"], 10, 999)).await.unwrap().is_empty());
    assert!(s.claim(claim_request(&[], 10, 5_000)).await.unwrap().is_empty());
    let claimed = s.claim(claim_request(&["m"], 10, 1_000)).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![later.id]);
    let record = s.get(other.id).await.unwrap().unwrap();
    assert_eq!(
        record.status,
        JobState::Pending,
        "jobs of unrequested machines stay put"
    );
    let both = s.claim(claim_request(&["m", "other"], 10, 1_000)).await.unwrap();
    assert_eq!(both.iter().map(|j| j.id).collect::<Vec<_>>(), vec![other.id]);
}

/// A job due by the clock of its writer, or of another claimer, that is
/// ahead of this claimer's is not claimed early, and not lost: it is
/// claimed once due by this claimer's clock.
pub async fn a_job_due_by_its_writers_clock_waits_for_the_claimers(s: Arc<dyn Storage>) {
    let mut ahead = new_job("m", 1);
    (ahead.created_at, ahead.run_at) = (1_000, 1_000);
    s.insert(ahead.clone()).await.unwrap();
    assert!(s.claim(claim_request(&["m"], 10, 500)).await.unwrap().is_empty());
    // A claimer at 1000 for another machine: a backend that moves due jobs
    // to a ready queue when claimed may do so now.
    assert!(s.claim(claim_request(&["other"], 10, 1_000)).await.unwrap().is_empty());
    assert!(s.claim(claim_request(&["m"], 10, 999)).await.unwrap().is_empty());
    let claimed = s.claim(claim_request(&["m"], 10, 1_000)).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ahead.id]);
}

/// A running job whose lease expired by one claimer's clock, but not yet by
/// another's that is behind, is not claimed by the one behind, and not
/// lost either: a later claim takes it.
pub async fn an_expired_lease_seen_by_a_claimer_behind_is_not_lost(s: Arc<dyn Storage>) {
    let held = new_job("m", 1);
    s.insert(held.clone()).await.unwrap();
    let first = s.claim(claim_request(&["m"], 1, 1_000)).await.unwrap();
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), vec![held.id]);
    // Its lease runs out at 31_000. A job that comes first in claim order,
    // so that a claimer ahead takes it and leaves the expired one queued.
    let mut urgent = new_job("m", 2);
    urgent.priority = -1;
    s.insert(urgent.clone()).await.unwrap();
    let ahead = s.claim(claim_request(&["m"], 1, 40_000)).await.unwrap();
    assert_eq!(ahead.iter().map(|j| j.id).collect::<Vec<_>>(), vec![urgent.id]);
    // Two claims in flight, the second by a worker whose clock is behind:
    // by its clock the lease still holds.
    let behind = s.claim(claim_request(&["m"], 10, 20_000)).await.unwrap();
    assert!(behind.is_empty(), "claimed under a live lease: {behind:?}");
    let record = s.get(held.id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobState::Running, 1));
    let later = s.claim(claim_request(&["m"], 10, 40_000)).await.unwrap();
    assert_eq!(
        later.iter().map(|j| (j.id, j.attempts)).collect::<Vec<_>>(),
        vec![(held.id, 2)],
        "the expired job is claimed again once its lease has run out here"
    );
}

/// A job whose stored payload cannot be read back (written by a writer
/// that did not check it: serde_json writes any depth, reads 127 levels)
/// fails alone when claimed: the jobs around it in claim order are claimed
/// as usual, it is failed with the reason, and no later claim trips on it.
pub async fn an_unreadable_payload_fails_its_job_alone(s: Arc<dyn Storage>) {
    let mut first = new_job("m", 1);
    first.priority = -2;
    let mut unreadable = new_job("m", 2);
    unreadable.priority = -1;
    unreadable.payload = (0..200).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]));
    let last = new_job("m", 3);
    for job in [&first, &unreadable, &last] {
        s.insert(job.clone()).await.unwrap();
    }
    for now in [0, 100_000] {
        let claimed = s.claim(claim_request(&["m"], 10, now)).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![first.id, last.id], "at {now}");
    }
    let counts = s.counts().await.unwrap();
    let failed: Vec<_> = counts
        .iter()
        .filter(|c| c.status == JobState::Failed)
        .map(|c| (c.state.as_str(), c.count))
        .collect();
    assert_eq!(failed, vec![("start", 1)], "{counts:?}");
    let running: u64 = counts
        .iter()
        .filter(|c| c.status == JobState::Running)
        .map(|c| c.count)
        .sum();
    assert_eq!(running, 2, "{counts:?}");
}

pub async fn claim_issues_increasing_tokens_and_counts_attempts(s: Arc<dyn Storage>) {
    for n in 0..3 {
        s.insert(new_job("m", n)).await.unwrap();
    }
    let claimed = s.claim(claim_request(&["m"], 3, 0)).await.unwrap();
    let mut tokens: Vec<u64> = claimed.iter().map(|j| j.lease.as_ref().unwrap().token.0).collect();
    for j in &claimed {
        assert_eq!(j.status, JobState::Running);
        assert_eq!(j.attempts, 1);
        let lease = j.lease.as_ref().unwrap();
        assert_eq!(lease.owner, "worker-1");
        assert_eq!(lease.expires_at, 30_000);
        let stored = s.get(j.id).await.unwrap().unwrap();
        assert_eq!(stored.lease, j.lease, "the returned lease is the stored one");
    }
    let first_max = *tokens.iter().max().unwrap();
    // Let the leases expire and claim again: new, greater tokens, attempt 2.
    let again = s.claim(claim_request(&["m"], 3, 30_000)).await.unwrap();
    assert_eq!(again.len(), 3);
    for j in &again {
        assert_eq!(j.attempts, 2);
        assert!(j.lease.as_ref().unwrap().token.0 > first_max);
    }
    tokens.extend(again.iter().map(|j| j.lease.as_ref().unwrap().token.0));
    let unique: HashSet<u64> = tokens.iter().copied().collect();
    assert_eq!(unique.len(), tokens.len(), "every lease has its own token");
}

pub async fn concurrent_claimers_never_share_a_job(s: Arc<dyn Storage>) {
    const JOBS: u64 = 2_000;
    let jobs: Vec<_> = (0..JOBS).map(|n| new_job("m", n)).collect();
    for chunk in jobs.chunks(500) {
        s.insert_batch(chunk.to_vec()).await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let s = Arc::clone(&s);
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let mut request = claim_request(&["m"], 25, 0);
                request.worker = format!("worker-{w}");
                let claimed = s.claim(request).await.unwrap();
                if claimed.is_empty() {
                    break;
                }
                for job in claimed {
                    s.commit(finish(&job, 1)).await.unwrap();
                    mine.push(job.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a job was claimed twice");
    assert_eq!(all.len() as u64, JOBS, "every job was claimed");
    for job in jobs.iter().step_by(97) {
        let record = s.get(job.id).await.unwrap().unwrap();
        assert_eq!((record.status, record.version), (JobState::Completed, 1));
    }
}

pub async fn claim_job_takes_one_job_whenever_it_is_due(s: Arc<dyn Storage>) {
    let mut later = new_job("m", 1);
    later.run_at = 10_000;
    s.insert(later.clone()).await.unwrap();
    let job = s
        .claim_job(later.id, "w", 5, 30_000)
        .await
        .unwrap()
        .expect("a pending job is claimable by id");
    assert_eq!((job.status, job.attempts), (JobState::Running, 1));
    assert_eq!(job.lease.as_ref().unwrap().expires_at, 30_005);
    assert!(
        s.claim_job(later.id, "w2", 6, 30_000).await.unwrap().is_none(),
        "not while leased"
    );
    let again = s
        .claim_job(later.id, "w2", 30_005, 30_000)
        .await
        .unwrap()
        .expect("after the lease expired");
    assert!(again.lease.as_ref().unwrap().token > job.lease.as_ref().unwrap().token);
    s.commit(finish(&again, 30_006)).await.unwrap();
    assert!(
        s.claim_job(later.id, "w", 30_007, 30_000).await.unwrap().is_none(),
        "not once finished"
    );
    let err = s.claim_job(crate::JobId::new(), "w", 0, 1).await.unwrap_err();
    assert!(matches!(err, crate::StorageError::NotFound(_)), "{err}");
}

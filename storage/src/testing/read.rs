//! Reads: listing with filters and cursors, counts, history, pruning, events.

use std::sync::Arc;
use std::time::Duration;

use super::support::{claim_request, finish, new_job};
use crate::{DeleteOutcome, JobFilter, JobState, ListOrder, Storage, StorageError, StorageEvent};

pub async fn list_filters_and_paginates(s: Arc<dyn Storage>) {
    let mut ids = Vec::new();
    for n in 0..25 {
        let job = new_job(if n % 5 == 0 { "b" } else { "a" }, n);
        ids.push(job.id);
        s.insert(job).await.unwrap();
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list(&JobFilter::default(), after, 7).await.unwrap();
        assert!(page.jobs.len() <= 7);
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids, "pages cover every job once, in id order");

    let b = JobFilter {
        machine: Some("b".into()),
        ..JobFilter::default()
    };
    assert_eq!(s.list(&b, None, 100).await.unwrap().jobs.len(), 5);
    let claimed = s.claim(claim_request(&["b"], 2, 0)).await.unwrap();
    s.commit(finish(&claimed[0], 1)).await.unwrap();
    let running = JobFilter {
        status: Some(JobState::Running),
        ..JobFilter::default()
    };
    assert_eq!(s.list(&running, None, 100).await.unwrap().jobs.len(), 1);
    let done = JobFilter {
        machine: Some("b".into()),
        state: Some("done".into()),
        status: Some(JobState::Completed),
        ..JobFilter::default()
    };
    let page = s.list(&done, None, 100).await.unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.next, None);
}

pub async fn list_newest_first_pages_backward(s: Arc<dyn Storage>) {
    let mut ids = Vec::new();
    for n in 0..23 {
        let job = new_job(if n % 4 == 0 { "b" } else { "a" }, n);
        ids.push(job.id);
        s.insert(job).await.unwrap();
    }
    ids.sort();
    ids.reverse();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_ordered(&JobFilter::default(), after, 5, ListOrder::NewestFirst)
            .await
            .unwrap();
        assert!(page.jobs.len() <= 5);
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids, "pages cover every job once, greatest id first");

    let b = JobFilter {
        machine: Some("b".into()),
        ..JobFilter::default()
    };
    let first = s.list_ordered(&b, None, 2, ListOrder::NewestFirst).await.unwrap();
    assert_eq!(first.jobs.len(), 2);
    assert!(first.jobs[0].id > first.jobs[1].id);
    let rest = s
        .list_ordered(&b, first.next, 100, ListOrder::NewestFirst)
        .await
        .unwrap();
    assert_eq!(first.jobs.len() + rest.jobs.len(), 6, "six of the jobs are b's");
    assert!(rest.jobs.iter().all(|j| j.id < first.jobs[1].id && j.machine == "b"));
    assert_eq!(rest.next, None);
}

pub async fn counts_group_by_machine_state_and_status(s: Arc<dyn Storage>) {
    for n in 0..6 {
        s.insert(new_job(if n < 4 { "a" } else { "b" }, n)).await.unwrap();
    }
    let claimed = s.claim(claim_request(&["a"], 1, 0)).await.unwrap();
    s.commit(finish(&claimed[0], 1)).await.unwrap();
    let rows: Vec<(String, String, JobState, u64)> = s
        .counts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.machine, r.state, r.status, r.count))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("a".into(), "done".into(), JobState::Completed, 1),
            ("a".into(), "start".into(), JobState::Pending, 3),
            ("b".into(), "start".into(), JobState::Pending, 2),
        ]
    );
}

pub async fn history_is_gap_free(s: Arc<dyn Storage>) {
    let job = new_job("m", 1);
    s.insert(job.clone()).await.unwrap();
    let mut now = 0;
    for round in 0..5u32 {
        let claimed = s.claim(claim_request(&["m"], 1, now)).await.unwrap();
        let j = &claimed[0];
        let retry = crate::Outcome::Retrying {
            run_at: now + 2,
            error: format!("round {round}"),
        };
        s.commit(super::support::held(j, now + 1, retry)).await.unwrap();
        now += 2;
    }
    let claimed = s.claim(claim_request(&["m"], 1, now)).await.unwrap();
    s.commit(finish(&claimed[0], now)).await.unwrap();
    let history = s.history(job.id).await.unwrap();
    let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, (0..=6).collect::<Vec<_>>());
    assert_eq!(history[0].from, None);
    assert_eq!(history[0].status, JobState::Pending);
    assert_eq!(history[3].from.as_deref(), Some("start"));
    assert_eq!(history[3].to, "start");
    assert_eq!(history[3].error.as_deref(), Some("round 2"));
    assert_eq!(history[6].to, "done");
    assert_eq!(history[6].status, JobState::Completed);
    let record = s.get(job.id).await.unwrap().unwrap();
    assert_eq!(record.version, 6);
    assert_eq!(record.last_error.as_deref(), Some("round 4"));
}

pub async fn prune_deletes_only_old_finished_jobs(s: Arc<dyn Storage>) {
    let old = new_job("m", 1);
    let recent = new_job("m", 2);
    let pending = new_job("m", 3);
    for j in [&old, &recent, &pending] {
        s.insert(j.clone()).await.unwrap();
    }
    let mut claimed = s.claim(claim_request(&["m"], 3, 0)).await.unwrap();
    claimed.sort_by_key(|j| j.payload["n"].as_u64());
    s.commit(finish(&claimed[0], 10)).await.unwrap();
    s.commit(finish(&claimed[1], 100)).await.unwrap();
    assert_eq!(s.prune(50).await.unwrap(), 1);
    assert!(s.get(old.id).await.unwrap().is_none());
    assert!(s.history(old.id).await.unwrap().is_empty(), "history goes with the job");
    assert!(s.get(recent.id).await.unwrap().is_some());
    assert!(
        s.get(pending.id).await.unwrap().is_some(),
        "unfinished jobs are never pruned"
    );
}

/// A finished job is deleted with its history and frees its idempotency
/// key; an unfinished one is left alone; a second job is untouched.
pub async fn only_a_finished_job_is_deleted(s: Arc<dyn Storage>) {
    let mut job = new_job("m", 1);
    job.idempotency_key = Some("once".into());
    let other = new_job("m", 2);
    s.insert(job.clone()).await.unwrap();
    assert_eq!(
        s.delete(job.id).await.unwrap(),
        DeleteOutcome::NotFinished(JobState::Pending)
    );
    let claimed = s.claim(claim_request(&["m"], 1, 0)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        s.delete(job.id).await.unwrap(),
        DeleteOutcome::NotFinished(JobState::Running)
    );
    s.insert(other.clone()).await.unwrap();
    s.commit(finish(&claimed[0], 10)).await.unwrap();
    assert_eq!(s.delete(job.id).await.unwrap(), DeleteOutcome::Deleted);
    assert!(s.get(job.id).await.unwrap().is_none());
    assert!(s.history(job.id).await.unwrap().is_empty(), "history goes with the job");
    assert!(s.get(other.id).await.unwrap().is_some(), "other jobs stay");
    let mut again = new_job("m", 3);
    again.idempotency_key = Some("once".into());
    assert!(s.insert(again).await.unwrap().created, "the key is free again");
    let err = s.delete(job.id).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(id) if id == job.id), "{err}");
}

pub async fn events_announce_inserts_and_commits(s: Arc<dyn Storage>) {
    let mut events = s.subscribe();
    let mut ready = s.subscribe_ready();
    let job = new_job("m", 1);
    s.insert(job.clone()).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(matches!(event, Ok(Ok(StorageEvent::JobsReady))), "{event:?}");
    let event = tokio::time::timeout(Duration::from_secs(5), ready.recv()).await;
    assert!(
        matches!(event, Ok(Ok(StorageEvent::JobsReady))),
        "a ready subscription hears of new work: {event:?}"
    );
    let claimed = s.claim(claim_request(&["m"], 1, 0)).await.unwrap();
    s.commit(finish(&claimed[0], 1)).await.unwrap();
    let changed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(StorageEvent::JobChanged(id)) => return id,
                Ok(_) => continue,
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    })
    .await
    .expect("a commit announces the job it changed");
    assert_eq!(changed, job.id);
}

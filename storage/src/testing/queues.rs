//! Queues: a claim takes jobs of its one queue, none of a paused queue, and
//! listings and counts name each job's queue.

use std::sync::Arc;

use super::support::{claim_from, new_job};
use crate::model::{JobFilter, NewJob, DEFAULT_QUEUE};
use crate::{JobState, Storage};

/// A job of machine `m` in `queue`.
fn job_in(queue: &str, n: u64) -> NewJob {
    let mut job = new_job("m", n);
    job.queue = queue.to_owned();
    job
}

pub async fn a_claim_takes_only_its_queue(s: Arc<dyn Storage>) {
    let (plain, email) = (new_job("m", 1), job_in("emails", 2));
    s.insert(plain.clone()).await.unwrap();
    s.insert(email.clone()).await.unwrap();
    assert_eq!(s.get(plain.id).await.unwrap().unwrap().queue, DEFAULT_QUEUE);
    assert_eq!(s.get(email.id).await.unwrap().unwrap().queue, "emails");
    assert!(s.claim(claim_from("reports", &["m"], 10, 0)).await.unwrap().is_empty());
    let emails = s.claim(claim_from("emails", &["m"], 10, 0)).await.unwrap();
    assert_eq!(emails.iter().map(|j| j.id).collect::<Vec<_>>(), [email.id]);
    assert_eq!(emails[0].queue, "emails", "a claimed job names its queue");
    let default = s.claim(claim_from(DEFAULT_QUEUE, &["m"], 10, 0)).await.unwrap();
    assert_eq!(default.iter().map(|j| j.id).collect::<Vec<_>>(), [plain.id]);
}

pub async fn a_paused_queue_is_not_claimed_until_resumed(s: Arc<dyn Storage>) {
    // One job of the queue runs when the queue is paused, and its worker
    // dies; another waits.
    let (running, waiting, elsewhere) = (job_in("emails", 1), job_in("emails", 2), new_job("m", 3));
    s.insert(running.clone()).await.unwrap();
    let claimed = s.claim(claim_from("emails", &["m"], 1, 0)).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [running.id]);
    s.insert(waiting.clone()).await.unwrap();
    s.insert(elsewhere.clone()).await.unwrap();

    assert!(!s.set_queue_paused("emails", true).await.unwrap(), "it was running");
    assert!(
        s.set_queue_paused("emails", true).await.unwrap(),
        "pausing again changes nothing"
    );
    assert!(
        !s.set_queue_paused("idle", true).await.unwrap(),
        "a queue without jobs can be paused"
    );
    assert_eq!(s.paused_queues().await.unwrap(), ["emails", "idle"]);

    // Past the dead worker's lease: neither job of the paused queue is
    // claimed, and other queues are served as before.
    let later = 60_000;
    assert!(s
        .claim(claim_from("emails", &["m"], 10, later))
        .await
        .unwrap()
        .is_empty());
    let other = s.claim(claim_from(DEFAULT_QUEUE, &["m"], 10, later)).await.unwrap();
    assert_eq!(other.iter().map(|j| j.id).collect::<Vec<_>>(), [elsewhere.id]);
    assert_eq!(s.get(waiting.id).await.unwrap().unwrap().status, JobState::Pending);

    assert!(s.set_queue_paused("emails", false).await.unwrap(), "it was paused");
    assert!(
        !s.set_queue_paused("emails", false).await.unwrap(),
        "resuming again changes nothing"
    );
    assert_eq!(s.paused_queues().await.unwrap(), ["idle"]);
    let mut resumed: Vec<_> = s
        .claim(claim_from("emails", &["m"], 10, later))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    resumed.sort();
    let mut expected = vec![running.id, waiting.id];
    expected.sort();
    assert_eq!(resumed, expected, "the expired lease and the waiting job, once resumed");
}

pub async fn a_job_of_a_paused_queue_is_claimed_by_id(s: Arc<dyn Storage>) {
    let job = job_in("emails", 1);
    s.insert(job.clone()).await.unwrap();
    s.set_queue_paused("emails", true).await.unwrap();
    assert!(s.claim(claim_from("emails", &["m"], 10, 0)).await.unwrap().is_empty());
    let claimed = s.claim_job(job.id, "operator", 0, 30_000).await.unwrap();
    assert_eq!(
        claimed.map(|j| (j.id, j.status)),
        Some((job.id, JobState::Running)),
        "an operator runs it now whatever the pause"
    );
}

pub async fn listings_and_counts_name_the_queue(s: Arc<dyn Storage>) {
    let jobs = [job_in("emails", 1), new_job("m", 2), job_in("emails", 3)];
    for job in &jobs {
        s.insert(job.clone()).await.unwrap();
    }
    let filter = JobFilter {
        queue: Some("emails".to_owned()),
        ..JobFilter::default()
    };
    let page = s.list(&filter, None, 10).await.unwrap();
    assert_eq!(
        page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [jobs[0].id, jobs[2].id]
    );
    let counts: Vec<_> = s
        .counts()
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.queue, row.status, row.count))
        .collect();
    assert_eq!(
        counts,
        [
            (DEFAULT_QUEUE.to_owned(), JobState::Pending, 1),
            ("emails".to_owned(), JobState::Pending, 2)
        ]
    );
}

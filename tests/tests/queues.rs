//! Queues: a machine's queue and a submission's own, the queues a runtime
//! serves, a queue's limit on steps at once, and pausing a queue for every
//! runtime sharing a storage, on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runekernel::prelude::*;
use runekernel::{JobRecord, JobState, RuntimeError};
use runekernel_tests::backends::TestStorage;
use runekernel_tests::machines::{Calls, Scripted, Task};
use runekernel_tests::on_every_backend;
use serde::{Deserialize, Serialize};

on_every_backend![
    a_runtime_serves_the_queues_of_its_machines,
    a_runtime_told_its_queues_serves_only_those,
    a_queue_limit_caps_its_steps_at_once,
    a_paused_queue_runs_nothing_until_resumed,
];

/// An email that waits in the `emails` queue.
#[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[machine(queue = "emails")]
enum Email {
    #[state(initial)]
    #[transition(to = Sent)]
    Draft,
    #[state(terminal)]
    Sent,
}

/// Sends each email in 20 ms, counting how many it sends at once.
#[derive(Clone, Default)]
struct Outbox {
    sending: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl EmailHandler for Outbox {
    async fn draft(&self, _ctx: &JobContext) -> Result<EmailDraftNext, StepError> {
        let now = self.sending.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.sending.fetch_sub(1, Ordering::SeqCst);
        Ok(EmailDraftNext::Sent)
    }
}

/// A runtime over `storage` with `Task` (default queue) and `Email`
/// (`emails`), with `queues` named if any.
async fn runtime(storage: &TestStorage, outbox: &Outbox, workers: usize, queues: &[(&str, usize)]) -> Runtime {
    let mut builder = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .workers(workers)
        .register(Task::handler(Scripted))
        .register(Email::handler(outbox.clone()))
        .resource(Calls::default());
    for &(name, limit) in queues {
        builder = builder.queue(name, limit);
    }
    builder.build().await.expect("build the runtime")
}

async fn finished(rt: &Runtime, id: JobId) -> JobRecord {
    tokio::time::timeout(Duration::from_secs(20), rt.wait_record(id))
        .await
        .expect("the job finishes in time")
        .unwrap()
}

async fn record(rt: &Runtime, id: JobId) -> JobRecord {
    rt.get_record(id).await.unwrap().expect("the job is stored")
}

fn todo() -> Task {
    Task::Todo { mode: "ok".into() }
}

async fn a_runtime_serves_the_queues_of_its_machines(storage: TestStorage) {
    let rt = runtime(&storage, &Outbox::default(), 4, &[]).await;
    let task = rt.submit(todo()).await.unwrap();
    let email = rt.submit(Email::Draft).await.unwrap();
    let elsewhere = SubmitOptions {
        queue: Some("emails".into()),
        ..SubmitOptions::default()
    };
    let task_as_email = rt.submit_with(todo(), elsewhere).await.unwrap();
    for (id, queue) in [(task, "default"), (email, "emails"), (task_as_email, "emails")] {
        let done = finished(&rt, id).await;
        assert_eq!((done.queue.as_str(), done.status), (queue, JobState::Completed));
    }
    let blank = SubmitOptions {
        queue: Some(" ".into()),
        ..SubmitOptions::default()
    };
    assert!(matches!(
        rt.submit_with(todo(), blank).await,
        Err(RuntimeError::EmptyQueue)
    ));
    let queues = rt.queues().await.unwrap();
    let names: Vec<_> = queues
        .iter()
        .map(|q| (q.name.as_str(), q.served_here, q.completed))
        .collect();
    assert_eq!(names, [("default", true, 1), ("emails", true, 2)]);
    rt.shutdown().await.unwrap();
}

async fn a_runtime_told_its_queues_serves_only_those(storage: TestStorage) {
    let outbox = Outbox::default();
    let emails_only = runtime(&storage, &outbox, 4, &[("emails", 2)]).await;
    let task = emails_only.submit(todo()).await.unwrap();
    let email = emails_only.submit(Email::Draft).await.unwrap();
    assert_eq!(finished(&emails_only, email).await.status, JobState::Completed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        record(&emails_only, task).await.status,
        JobState::Pending,
        "the default queue is not served"
    );
    let everything = runtime(&storage, &outbox, 4, &[]).await;
    assert_eq!(finished(&everything, task).await.status, JobState::Completed);
    emails_only.shutdown().await.unwrap();
    everything.shutdown().await.unwrap();
}

async fn a_queue_limit_caps_its_steps_at_once(storage: TestStorage) {
    let outbox = Outbox::default();
    let rt = runtime(&storage, &outbox, 8, &[("emails", 2), ("default", 8)]).await;
    let emails = rt.submit_many((0..12).map(|_| Email::Draft)).await.unwrap();
    let tasks = rt.submit_many((0..4).map(|_| todo())).await.unwrap();
    for id in emails.into_iter().chain(tasks) {
        assert_eq!(finished(&rt, id).await.status, JobState::Completed);
    }
    assert_eq!(
        outbox.most_at_once.load(Ordering::SeqCst),
        2,
        "at most the queue's limit at once"
    );
    rt.shutdown().await.unwrap();
}

async fn a_paused_queue_runs_nothing_until_resumed(storage: TestStorage) {
    let outbox = Outbox::default();
    let worker = runtime(&storage, &outbox, 4, &[]).await;
    let operator = runtime(&storage, &outbox, 0, &[]).await;
    assert!(!operator.pause_queue("emails").await.unwrap());
    let email = operator.submit(Email::Draft).await.unwrap();
    let task = operator.submit(todo()).await.unwrap();
    assert_eq!(
        finished(&worker, task).await.status,
        JobState::Completed,
        "other queues run on"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        record(&worker, email).await.status,
        JobState::Pending,
        "no runtime claims it"
    );
    let emails = worker.queue("emails").await.unwrap();
    assert!(emails.paused && emails.pending == 1, "{emails:?}");
    assert!(operator.resume_queue("emails").await.unwrap());
    assert_eq!(finished(&worker, email).await.status, JobState::Completed);
    assert!(!worker.queue("emails").await.unwrap().paused);
    worker.shutdown().await.unwrap();
    operator.shutdown().await.unwrap();
}

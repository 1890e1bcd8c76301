//! The runtime with real workers, on every backend: typed pipelines, retries,
//! failures, panics, guards, timeouts, snoozes, cancellation, idempotency,
//! batches, definition changes, and machines a runtime does not run.

use std::time::Duration;

use runekernel::prelude::*;
use runekernel::storage::{JobFilter, JobRecord, NewJob};
use runekernel::{Backoff, CancelOutcome, Policies, RuntimeError};
use runekernel_tests::backends::TestStorage;
use runekernel_tests::machines::{Calls, Order, Scripted, Shop, Task};
use runekernel_tests::on_every_backend;

on_every_backend![
    an_order_runs_to_completion,
    retries_back_off_then_succeed,
    spent_attempts_fail_the_job,
    a_fatal_error_fails_at_once,
    a_panic_fails_the_step_not_the_worker,
    a_handler_that_panics_before_returning_its_future_fails_the_step,
    a_rejected_guard_fails_the_step,
    a_step_that_runs_too_long_times_out,
    a_snooze_spends_no_attempt,
    cancelling_a_pending_job,
    cancelling_a_running_job_it_cooperates,
    cancelling_a_running_job_that_ignores_it,
    idempotency_keys_submit_once,
    submit_many_and_list,
    a_state_the_definition_lost_fails_that_job_only,
    jobs_of_other_machines_are_left_alone,
    run_job_runs_a_delayed_job_now,
    an_admin_can_revive_a_failed_job,
    a_failed_job_is_retried_from_where_it_stopped,
    only_a_finished_job_is_deleted,
    jobs_matching_a_filter_are_cancelled_and_retried_page_by_page,
    shutdown_hands_unfinished_steps_back,
    an_idle_runtime_starts_each_new_job_without_polling,
    a_runtime_without_workers_submits_but_runs_nothing,
    the_jobs_of_one_batch_share_their_submission_time,
];

/// Retries a few milliseconds apart, so tests that retry finish quickly.
const FAST_RETRIES: Backoff = Backoff {
    base: Duration::from_millis(10),
    max: Duration::from_millis(50),
    jitter: 0.2,
};

/// A runtime over `storage` running `Order` and `Task`, with fast retries.
async fn runtime(storage: &TestStorage) -> Runtime {
    Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Order::handler(Shop))
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .resource(String::from("four"))
        .max_attempts(3)
        .backoff(FAST_RETRIES)
        .cancel_grace(Duration::from_millis(100))
        .build()
        .await
        .expect("build the runtime")
}

async fn run_task(rt: &Runtime, mode: &str) -> (JobId, JobView<Task>) {
    let id = rt.submit(Task::Todo { mode: mode.into() }).await.unwrap();
    let view = tokio::time::timeout(Duration::from_secs(20), rt.wait::<Task>(id))
        .await
        .expect("the job finishes in time")
        .unwrap();
    (id, view)
}

async fn an_order_runs_to_completion(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let id = rt
        .submit(Order::Created {
            sku: "rune-1".into(),
            qty: 2,
        })
        .await
        .unwrap();
    let done = rt.wait::<Order>(id).await.unwrap();
    assert_eq!(done.status, JobState::Completed);
    assert_eq!(
        done.state,
        Order::Shipped {
            tracking: "TRACK-200".into()
        }
    );
    let history = rt.history(id).await.unwrap();
    let path: Vec<(Option<&str>, &str, JobState)> = history
        .iter()
        .map(|h| (h.from.as_deref(), h.to.as_str(), h.status))
        .collect();
    assert_eq!(
        path,
        [
            (None, "Created", JobState::Pending),
            (Some("Created"), "Paid", JobState::Running),
            (Some("Paid"), "Shipped", JobState::Completed),
        ]
    );
    assert_eq!(history.iter().map(|h| h.seq).collect::<Vec<_>>(), [0, 1, 2]);
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn retries_back_off_then_succeed(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let (id, view) = run_task(&rt, "retry-2").await;
    assert_eq!(view.status, JobState::Completed);
    assert_eq!(view.state, Task::Done { attempt: 3, calls: 3 });
    assert_eq!(view.last_error.as_deref(), Some("failure 2"));
    let history = rt.history(id).await.unwrap();
    assert_eq!(history.len(), 4, "submission, two retries, the transition");
    for (entry, n) in history[1..3].iter().zip(1..) {
        assert_eq!((entry.to.as_str(), entry.status), ("Todo", JobState::Pending));
        assert_eq!(entry.error.as_deref(), Some(format!("failure {n}").as_str()));
        assert_eq!(entry.attempt, n);
    }
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn spent_attempts_fail_the_job(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let (id, view) = run_task(&rt, "always-retry").await;
    assert_eq!(view.status, JobState::Failed);
    assert_eq!(
        view.last_error.as_deref(),
        Some("always failing (gave up after 3 of 3 attempts)")
    );
    assert_eq!(rt.history(id).await.unwrap().len(), 4);
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn a_fatal_error_fails_at_once(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let (id, view) = run_task(&rt, "fatal").await;
    assert_eq!((view.status, view.attempts), (JobState::Failed, 1));
    assert_eq!(view.last_error.as_deref(), Some("cannot ever work"));
    assert_eq!(rt.history(id).await.unwrap().len(), 2);
    rt.shutdown().await.unwrap();
}

async fn a_panic_fails_the_step_not_the_worker(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let (id, view) = run_task(&rt, "panic-once").await;
    assert_eq!(view.state, Task::Done { attempt: 2, calls: 2 });
    let history = rt.history(id).await.unwrap();
    assert_eq!(
        history[1].error.as_deref(),
        Some("the handler panicked: handler blew up")
    );
    // The worker is still there.
    let (_, other) = run_task(&rt, "ok").await;
    assert_eq!(other.status, JobState::Completed);
    rt.shutdown().await.unwrap();
}

/// A step function that panics while it makes its future (not inside it)
/// fails the step like any panic: the runtime calls it inside the step.
async fn a_handler_that_panics_before_returning_its_future_fails_the_step(storage: TestStorage) {
    let counted = std::sync::atomic::AtomicU32::new(0);
    let handler = runekernel::Handler::new(move |_: Task, ctx: JobContext| {
        let calls = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        assert!(calls > 1, "the step function blew up");
        let attempt = ctx.attempt();
        async move { Ok(Task::Done { attempt, calls }) }
    });
    let rt = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(handler)
        .backoff(FAST_RETRIES)
        .build()
        .await
        .unwrap();
    let (id, view) = run_task(&rt, "ok").await;
    assert_eq!(view.state, Task::Done { attempt: 2, calls: 2 });
    let history = rt.history(id).await.unwrap();
    assert_eq!(
        history[1].error.as_deref(),
        Some("the handler panicked: the step function blew up")
    );
    rt.shutdown().await.unwrap();
}

async fn a_rejected_guard_fails_the_step(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let allowed = rt
        .submit(Order::Created {
            sku: "a".into(),
            qty: 60,
        })
        .await
        .unwrap();
    assert_eq!(rt.wait::<Order>(allowed).await.unwrap().state, Order::Refunded);
    let refused = rt
        .submit(Order::Created {
            sku: "b".into(),
            qty: 2_000,
        })
        .await
        .unwrap();
    let view = rt.wait::<Order>(refused).await.unwrap();
    assert_eq!(view.status, JobState::Failed);
    assert_eq!(view.state, Order::Paid { amount_cents: 200_000 });
    let error = view.last_error.unwrap();
    assert!(
        error.contains("the guard `refund_allowed` rejected the transition from `Paid` to `Refunded`"),
        "{error}"
    );
    rt.verify(refused).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn a_step_that_runs_too_long_times_out(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let options = SubmitOptions {
        timeout: Some(Duration::from_millis(50)),
        max_attempts: Some(2),
        ..Default::default()
    };
    let id = rt
        .submit_with(
            Task::Todo {
                mode: "sleep-5000".into(),
            },
            options,
        )
        .await
        .unwrap();
    let view = rt.wait::<Task>(id).await.unwrap();
    assert_eq!(view.status, JobState::Failed);
    assert_eq!(
        view.last_error.as_deref(),
        Some("the step timed out after 50 ms (gave up after 2 of 2 attempts)")
    );
    rt.shutdown().await.unwrap();
}

async fn a_snooze_spends_no_attempt(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let (id, view) = run_task(&rt, "snooze-once").await;
    assert_eq!(view.state, Task::Done { attempt: 1, calls: 2 });
    let history = rt.history(id).await.unwrap();
    assert_eq!(
        (history[1].status, history[1].error.as_deref()),
        (JobState::Pending, None)
    );
    assert!(history[2].at - history[1].at >= 50, "the snooze lasts its duration");
    rt.shutdown().await.unwrap();
}

async fn cancelling_a_pending_job(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let options = SubmitOptions {
        delay: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let id = rt.submit_with(Task::Todo { mode: "ok".into() }, options).await.unwrap();
    assert!(matches!(rt.cancel(id).await.unwrap(), CancelOutcome::Cancelled(_)));
    let view = rt.wait::<Task>(id).await.unwrap();
    assert_eq!(view.status, JobState::Cancelled);
    assert_eq!(
        rt.cancel(id).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobState::Cancelled)
    );
    assert!(matches!(rt.cancel(JobId::new()).await, Err(RuntimeError::NotFound(_))));
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn wait_until_running(rt: &Runtime, id: JobId) {
    for _ in 0..500 {
        if rt.get::<Task>(id).await.unwrap().unwrap().status == JobState::Running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never started");
}

async fn cancelling_a_running_job_it_cooperates(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let id = rt
        .submit(Task::Todo {
            mode: "wait-cancel".into(),
        })
        .await
        .unwrap();
    wait_until_running(&rt, id).await;
    assert_eq!(rt.cancel(id).await.unwrap(), CancelOutcome::Requested);
    let view = rt.wait::<Task>(id).await.unwrap();
    assert_eq!(view.status, JobState::Cancelled);
    assert_eq!(
        view.state,
        Task::Todo {
            mode: "wait-cancel".into()
        },
        "never half-committed"
    );
    let history = rt.history(id).await.unwrap();
    assert_eq!(history.last().unwrap().error.as_deref(), Some("cancelled"));
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn cancelling_a_running_job_that_ignores_it(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let id = rt
        .submit(Task::Todo {
            mode: "ignore-cancel".into(),
        })
        .await
        .unwrap();
    wait_until_running(&rt, id).await;
    rt.cancel(id).await.unwrap();
    let view = tokio::time::timeout(Duration::from_secs(5), rt.wait::<Task>(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, JobState::Cancelled, "dropped after the grace period");
    rt.shutdown().await.unwrap();
}

async fn idempotency_keys_submit_once(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let options = SubmitOptions {
        idempotency_key: Some("task-7".into()),
        ..Default::default()
    };
    let first = rt
        .submit_with(Task::Todo { mode: "ok".into() }, options.clone())
        .await
        .unwrap();
    let second = rt
        .submit_with(Task::Todo { mode: "fatal".into() }, options)
        .await
        .unwrap();
    assert_eq!(first, second);
    let view = rt.wait::<Task>(first).await.unwrap();
    assert_eq!(view.status, JobState::Completed);
    rt.shutdown().await.unwrap();
}

/// A runtime over `storage` that submits `Task`s but runs none (no workers).
async fn submitter(storage: &TestStorage) -> Runtime {
    Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .resource(String::from("four"))
        .workers(0)
        .build()
        .await
        .expect("a runtime without workers builds")
}

/// Every job `filter` matches, read `page` at a time.
async fn every_job(rt: &Runtime, filter: &JobFilter, page: usize) -> Vec<JobRecord> {
    let (mut jobs, mut after) = (Vec::new(), None);
    loop {
        let listed = rt.list(filter, after, page).await.unwrap();
        jobs.extend(listed.jobs);
        match listed.next {
            Some(next) => after = Some(next),
            None => return jobs,
        }
    }
}

async fn submit_many_and_list(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let ids = rt
        .submit_many((0..50).map(|_| Task::Todo { mode: "ok".into() }))
        .await
        .unwrap();
    assert_eq!(ids.len(), 50);
    for id in &ids {
        rt.wait::<Task>(*id).await.unwrap();
    }
    let filter = JobFilter {
        machine: Some("task".into()),
        status: Some(JobState::Completed),
        ..Default::default()
    };
    assert_eq!(every_job(&rt, &filter, 20).await.len(), 50);
    let err = rt.submit(Task::Done { attempt: 1, calls: 1 }).await.unwrap_err();
    assert_eq!(err.to_string(), "a `task` job must start in `Todo`, not `Done`");
    rt.shutdown().await.unwrap();
}

async fn a_state_the_definition_lost_fails_that_job_only(storage: TestStorage) {
    // A job stored by an older definition, in a state this one lacks.
    let mut old = NewJob::new(JobId::new(), "order", "Teleported", serde_json::json!({}));
    old.fingerprint = 0xdead_beef;
    old.priority = -1;
    old.max_attempts = 3;
    storage.storage.insert(old.clone()).await.unwrap();
    let rt = runtime(&storage).await;
    let good = rt
        .submit(Order::Created {
            sku: "ok".into(),
            qty: 1,
        })
        .await
        .unwrap();
    assert_eq!(rt.wait::<Order>(good).await.unwrap().status, JobState::Completed);
    let record = rt.wait_record(old.id).await.unwrap();
    assert_eq!(record.status, JobState::Failed);
    let error = record.last_error.unwrap();
    for needed in [
        "`order`",
        "Teleported",
        "00000000deadbeef",
        &Order::definition().fingerprint().to_string(),
    ] {
        assert!(error.contains(needed), "{error} should name {needed}");
    }
    match rt.get::<Order>(old.id).await {
        Err(RuntimeError::Decode { state, .. }) => assert_eq!(state, "Teleported"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    rt.shutdown().await.unwrap();
}

async fn jobs_of_other_machines_are_left_alone(storage: TestStorage) {
    // This runtime runs only `order`; `task` jobs wait for a runtime that has it.
    let orders_only = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Order::handler(Shop))
        .build()
        .await
        .unwrap();
    let task = orders_only.submit(Task::Todo { mode: "ok".into() }).await.unwrap();
    let order = orders_only
        .submit(Order::Created {
            sku: "x".into(),
            qty: 1,
        })
        .await
        .unwrap();
    orders_only.wait::<Order>(order).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        orders_only.get::<Task>(task).await.unwrap().unwrap().status,
        JobState::Pending
    );
    let rt = runtime(&storage).await;
    assert_eq!(rt.wait::<Task>(task).await.unwrap().status, JobState::Completed);
    orders_only.shutdown().await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn run_job_runs_a_delayed_job_now(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let options = SubmitOptions {
        delay: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let id = rt
        .submit_with(
            Task::Todo {
                mode: "resource".into(),
            },
            options,
        )
        .await
        .unwrap();
    assert_eq!(rt.run_job(&id).await.unwrap(), JobState::Completed);
    let view = rt.get::<Task>(id).await.unwrap().unwrap();
    assert_eq!(
        view.state,
        Task::Done { attempt: 4, calls: 1 },
        "the String resource is \"four\""
    );
    assert_eq!(
        rt.run_job(&id).await.unwrap(),
        JobState::Completed,
        "a finished job is left alone"
    );
    rt.shutdown().await.unwrap();
}

async fn an_admin_can_revive_a_failed_job(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let id = rt
        .submit(Order::Created {
            sku: "big".into(),
            qty: 2_000,
        })
        .await
        .unwrap();
    let failed = rt.wait::<Order>(id).await.unwrap();
    assert_eq!(
        (failed.status, failed.state.clone()),
        (JobState::Failed, Order::Paid { amount_cents: 200_000 })
    );
    let err = rt.set_state(id, Order::Refunded).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::Transition(_)),
        "the guard still refuses: {err}"
    );
    let moved = rt
        .set_state(
            id,
            Order::Shipped {
                tracking: "by hand".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.status, JobState::Completed);
    let history = rt.history(id).await.unwrap();
    assert_eq!(history.last().unwrap().worker.as_deref(), Some("admin"));
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn a_failed_job_is_retried_from_where_it_stopped(storage: TestStorage) {
    let rt = runtime(&storage).await;
    // Three failing calls spend the three attempts; the fourth succeeds.
    let (id, failed) = run_task(&rt, "retry-3").await;
    assert_eq!((failed.status, failed.attempts), (JobState::Failed, 3));
    let retried = rt.retry(id).await.unwrap();
    assert_eq!((retried.status, retried.attempts), (JobState::Pending, 0));
    let done = rt.wait::<Task>(id).await.unwrap();
    assert_eq!(done.status, JobState::Completed);
    assert!(
        matches!(done.state, Task::Done { attempt: 1, calls: 4 }),
        "the retry ran from the failed state with fresh attempts: {:?}",
        done.state
    );
    let history = rt.history(id).await.unwrap();
    let retry = history
        .iter()
        .find(|e| e.status == JobState::Pending && e.error.as_deref().is_some_and(|e| e.starts_with("retry requested")))
        .expect("a history entry records the retry");
    assert_eq!((retry.from.as_deref(), retry.to.as_str()), (Some("Todo"), "Todo"));
    assert!(retry.worker.is_some(), "it names who asked");
    let err = rt.retry(id).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::NotRetryable {
                status: JobState::Completed,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(rt.retry(JobId::new()).await, Err(RuntimeError::NotFound(_))));
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

async fn only_a_finished_job_is_deleted(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let waiting = rt
        .submit_with(
            Task::Todo { mode: "ok".into() },
            SubmitOptions {
                delay: Some(Duration::from_secs(3600)),
                ..SubmitOptions::default()
            },
        )
        .await
        .unwrap();
    let err = rt.delete(waiting).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::NotFinished {
                status: JobState::Pending,
                ..
            }
        ),
        "{err}"
    );
    let (done, _) = run_task(&rt, "ok").await;
    rt.delete(done).await.unwrap();
    assert!(rt.get_record(done).await.unwrap().is_none());
    assert!(rt.history(done).await.unwrap().is_empty());
    assert!(matches!(rt.delete(done).await, Err(RuntimeError::NotFound(_))));
    assert!(rt.get_record(waiting).await.unwrap().is_some());
    rt.shutdown().await.unwrap();
}

async fn jobs_matching_a_filter_are_cancelled_and_retried_page_by_page(storage: TestStorage) {
    let rt = runtime(&storage).await;
    let later = SubmitOptions {
        delay: Some(Duration::from_secs(3600)),
        ..SubmitOptions::default()
    };
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            rt.submit_with(Task::Todo { mode: "ok".into() }, later.clone())
                .await
                .unwrap(),
        );
    }
    let order = rt
        .submit_with(
            Order::Created {
                sku: "a".into(),
                qty: 1,
            },
            later,
        )
        .await
        .unwrap();
    let every_page = |status: JobState| JobFilter {
        machine: Some("task".into()),
        status: Some(status),
        ..JobFilter::default()
    };
    let (mut cancelled, mut after, mut pages) = (0, None, 0);
    loop {
        let page = rt
            .cancel_matching(&every_page(JobState::Pending), after, 2)
            .await
            .unwrap();
        cancelled += page.touched;
        pages += 1;
        let Some(next) = page.next else { break };
        after = Some(next);
    }
    assert_eq!((cancelled, pages), (5, 3));
    assert_eq!(
        rt.get_record(order).await.unwrap().map(|r| r.status),
        Some(JobState::Pending),
        "a job the filter does not match is left alone"
    );
    let (mut retried, mut after) = (0, None);
    loop {
        let page = rt
            .retry_matching(&every_page(JobState::Cancelled), after, 2)
            .await
            .unwrap();
        retried += page.touched;
        let Some(next) = page.next else { break };
        after = Some(next);
    }
    assert_eq!(retried, 5);
    for id in ids {
        let done = tokio::time::timeout(Duration::from_secs(20), rt.wait::<Task>(id))
            .await
            .expect("a retried job runs at once")
            .unwrap();
        assert_eq!(done.status, JobState::Completed);
    }
    rt.shutdown().await.unwrap();
}

async fn shutdown_hands_unfinished_steps_back(storage: TestStorage) {
    let rt = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let id = rt
        .submit(Task::Todo {
            mode: "sleep-1500".into(),
        })
        .await
        .unwrap();
    wait_until_running(&rt, id).await;
    rt.shutdown().await.unwrap();
    let record = rt.get_record(id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.attempts, record.version),
        (JobState::Pending, 0, 0),
        "handed back, not half-committed"
    );
    assert!(record.lease.is_none());
    // Another runtime picks it up and finishes it.
    let next = runtime(&storage).await;
    assert_eq!(next.wait::<Task>(id).await.unwrap().status, JobState::Completed);
    next.verify(id).await.unwrap();
    next.shutdown().await.unwrap();
}

/// With the poll interval out of reach, every job submitted to an idle
/// runtime must still start: the producer may never sleep through the
/// announcement of new work (including while a claim that found nothing is
/// still in flight).
async fn an_idle_runtime_starts_each_new_job_without_polling(storage: TestStorage) {
    let rt = Runtime::builder()
        .shared_storage(storage.storage.clone())
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .resource(String::from("four"))
        .policies({
            let mut policies = Policies::default();
            policies.poll_interval = Duration::from_secs(3600);
            policies
        })
        .build()
        .await
        .expect("build the runtime");
    for _ in 0..20 {
        let id = rt.submit(Task::Todo { mode: "ok".into() }).await.unwrap();
        let view = tokio::time::timeout(Duration::from_secs(20), rt.wait::<Task>(id))
            .await
            .expect("a job submitted to an idle runtime starts without waiting for a poll")
            .unwrap();
        assert_eq!(view.status, JobState::Completed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.shutdown().await.unwrap();
}

/// `workers(0)`: a submitter. Its jobs wait for a runtime with workers (or
/// `run_job`); it never claims one itself.
async fn a_runtime_without_workers_submits_but_runs_nothing(storage: TestStorage) {
    let submitter = submitter(&storage).await;
    let ids = submitter
        .submit_many((0..3).map(|_| Task::Todo { mode: "ok".into() }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in &ids {
        assert_eq!(
            submitter.get::<Task>(*id).await.unwrap().unwrap().status,
            JobState::Pending
        );
    }
    assert_eq!(submitter.run_job(&ids[0]).await.unwrap(), JobState::Completed);
    let worker = runtime(&storage).await;
    for id in &ids[1..] {
        let view = tokio::time::timeout(Duration::from_secs(20), worker.wait::<Task>(*id))
            .await
            .expect("a runtime with workers runs what the submitter submitted")
            .unwrap();
        assert_eq!(view.status, JobState::Completed);
    }
    worker.shutdown().await.unwrap();
    submitter.shutdown().await.unwrap();
}

async fn the_jobs_of_one_batch_share_their_submission_time(storage: TestStorage) {
    let submitter = submitter(&storage).await;
    // Encoding this many takes milliseconds: a clock read per job would
    // see it move.
    let ids = submitter
        .submit_many((0..5000).map(|_| Task::Todo { mode: "ok".into() }))
        .await
        .unwrap();
    let first = submitter.get_record(ids[0]).await.unwrap().unwrap();
    let filter = JobFilter {
        machine: Some("task".into()),
        ..Default::default()
    };
    let jobs = every_job(&submitter, &filter, 1000).await;
    for job in &jobs {
        assert_eq!(
            (job.created_at, job.run_at),
            (first.created_at, first.created_at),
            "job {}",
            job.id
        );
    }
    assert_eq!(jobs.len(), ids.len());
    submitter.shutdown().await.unwrap();
}

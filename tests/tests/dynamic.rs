//! The seed's untyped API (`Runtime::new`, `Job`, `submit_job`, `run_job`)
//! and machines built at run time with `SimpleStateMachine`.

use std::time::Duration;

use runekernel::job::Job;
use runekernel::prelude::*;
use runekernel::state_machine::{SimpleStateMachine, Transition};
use runekernel::{DynamicNext, GraphProblem, RuntimeError};
use serde_json::json;

#[tokio::test]
async fn the_seed_quick_start_runs_a_job_through_its_lifecycle() {
    let runtime = Runtime::new().unwrap();
    let mut job = Job::new();
    job.set_data("name".to_string(), serde_json::Value::String("test-job".to_string()));
    let job_id = runtime.submit_job(job).await.unwrap();
    assert!(!job_id.to_string().is_empty());
    runtime.run_job(&job_id).await.unwrap();
    let record = runtime.wait_record(job_id).await.unwrap();
    assert_eq!((record.status, record.state.as_str()), (JobState::Completed, "done"));
    assert_eq!(record.payload, json!({"name": "test-job"}));
    let history = runtime.history(job_id).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.to.as_str()).collect::<Vec<_>>(),
        ["created", "done"]
    );
    runtime.verify(job_id).await.unwrap();
    runtime.shutdown().await.unwrap();
}

fn review() -> SimpleStateMachine {
    SimpleStateMachine::new("review")
        .initial_state("draft")
        .state("in_review")
        .terminal_state("published")
        .terminal_state("rejected")
        .transition("draft", "in_review")
        .transition_if("in_review", "published", "approved", |data| data["approved"] == true)
        .transition("in_review", "rejected")
}

#[test]
fn transitions_are_the_same_values_a_derived_machine_lists() {
    let sm = review();
    assert_eq!(sm.transitions()[0], Transition::new("draft", "in_review"));
    assert_eq!(sm.transitions()[1].guard.as_deref(), Some("approved"));
    let machine = sm.build().unwrap();
    assert_eq!(machine.definition().transitions(), review().transitions());
    assert!(SimpleStateMachine::new("example").transitions().is_empty());
}

#[test]
fn a_broken_graph_is_an_error_listing_every_problem() {
    let err = SimpleStateMachine::new("broken")
        .initial_state("a")
        .initial_state("b")
        .state("c")
        .terminal_state("d")
        .transition("a", "d")
        .transition("b", "dd")
        .build()
        .unwrap_err();
    assert!(err.problems.contains(&GraphProblem::ExtraInitial {
        state: "b".into(),
        first: "a".into()
    }));
    assert!(err.problems.contains(&GraphProblem::UnknownTarget {
        from: "b".into(),
        to: "dd".into(),
        suggestion: Some("d".into())
    }));
    assert!(err.problems.contains(&GraphProblem::NoOutgoing("c".into())));
    assert!(err.problems.contains(&GraphProblem::Unreachable("c".into())));
    assert!(
        err.to_string().starts_with("the `broken` machine is not valid: "),
        "{err}"
    );
}

async fn review_runtime() -> Runtime {
    let machine = review().build().unwrap().with_handler(|ctx, step| async move {
        assert!(ctx.attempt() >= 1);
        Ok(match step.state.as_str() {
            "draft" => DynamicNext::to("in_review").with_data(json!({
                "approved": step.data["score"].as_u64() > Some(5),
                "force": step.data["force"],
            })),
            _ if step.data["approved"] == true => DynamicNext::to("published"),
            // The condition refuses this while `approved` is false, so the
            // step fails and is retried until its attempts are spent.
            _ if step.data["force"] == true => DynamicNext::to("published"),
            _ => "rejected".into(),
        })
    });
    Runtime::builder()
        .register(machine)
        .max_attempts(2)
        .backoff(runekernel::Backoff {
            base: Duration::from_millis(5),
            ..Default::default()
        })
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dynamic_machine_runs_with_its_handler_and_conditions() {
    let rt = review_runtime().await;
    let mut good = Job::for_machine("review");
    good.set_data("score", 9);
    let good = rt.submit_job(good).await.unwrap();
    let mut poor = Job::for_machine("review");
    poor.set_data("score", 2);
    let poor = rt.submit_job(poor).await.unwrap();
    assert_eq!(rt.wait_record(good).await.unwrap().state, "published");
    let rejected = rt.wait_record(poor).await.unwrap();
    assert_eq!(rejected.state, "rejected");
    assert_eq!(rejected.payload, json!({"approved": false, "force": null}));
    rt.verify(good).await.unwrap();
    rt.verify(poor).await.unwrap();
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_condition_fails_the_step() {
    let rt = review_runtime().await;
    let id = rt
        .submit_stored(
            "review",
            "draft",
            json!({"score": 1, "force": true}),
            SubmitOptions::default(),
        )
        .await
        .unwrap();
    let record = rt.wait_record(id).await.unwrap();
    assert_eq!((record.status, record.state.as_str()), (JobState::Failed, "in_review"));
    let error = record.last_error.unwrap();
    assert!(
        error.contains("the guard `approved` rejected the transition from `in_review` to `published`"),
        "{error}"
    );
    rt.verify(id).await.unwrap();
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dynamic_machine_without_a_handler_needs_one_way_out() {
    let fork = SimpleStateMachine::new("fork")
        .initial_state("start")
        .terminal_state("left")
        .terminal_state("right")
        .transition("start", "left")
        .transition("start", "right")
        .build()
        .unwrap();
    let rt = Runtime::builder().register(fork).build().await.unwrap();
    let id = rt.submit_job(Job::for_machine("fork")).await.unwrap();
    let record = rt.wait_record(id).await.unwrap();
    assert_eq!(record.status, JobState::Failed);
    assert!(record.last_error.unwrap().contains("2 ways out and no handler"));
    let err = rt.submit_job(Job::for_machine("nope")).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnknownMachine(ref m) if m == "nope"),
        "{err}"
    );
    let err = rt
        .submit_stored("fork", "left", json!(null), SubmitOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "a `fork` job must start in `start`, not `left`");
    rt.shutdown().await.unwrap();
}

//! Payloads that would not read back once stored (nested deeper than
//! `runekernel::storage::MAX_PAYLOAD_DEPTH`) are refused before anything is
//! written: a submit fails with a clear error, and a step that returns one
//! fails its job alone, its last readable state kept.

use runekernel::job::Job;
use runekernel::prelude::*;
use runekernel::storage::MAX_PAYLOAD_DEPTH;
use runekernel::{DynamicNext, RuntimeError, SimpleStateMachine};
use serde_json::{json, Value};

/// `levels` levels of nested arrays around a number.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| json!([inner]))
}

fn machine() -> SimpleStateMachine {
    SimpleStateMachine::new("m")
        .initial_state("start")
        .terminal_state("done")
        .transition("start", "done")
}

#[tokio::test]
async fn a_submit_of_a_payload_too_deep_to_read_back_is_refused() {
    let rt = Runtime::builder()
        .register(machine().build().unwrap())
        .workers(0)
        .build()
        .await
        .unwrap();
    let mut job = Job::for_machine("m");
    // One level for the field itself.
    job.set_data("tree", nested(MAX_PAYLOAD_DEPTH));
    let err = rt.submit_job(job).await.unwrap_err();
    assert!(matches!(err, RuntimeError::PayloadTooDeep { .. }), "{err:?}");
    assert!(err.to_string().contains("levels deep"), "{err}");
    assert!(rt.counts().await.unwrap().is_empty(), "nothing was stored");
    let mut fits = Job::for_machine("m");
    fits.set_data("tree", nested(MAX_PAYLOAD_DEPTH - 1));
    rt.submit_job(fits).await.unwrap();
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_step_that_returns_a_payload_too_deep_fails_its_job_alone() {
    let deep = machine().build().unwrap().with_handler(|_ctx, step| async move {
        let levels = if step.data.get("deep").is_some() {
            MAX_PAYLOAD_DEPTH + 1
        } else {
            1
        };
        Ok(DynamicNext::to("done").with_data(nested(levels)))
    });
    let rt = Runtime::builder().register(deep).build().await.unwrap();
    let mut bad = Job::for_machine("m");
    bad.set_data("deep", true);
    let bad = rt.submit_job(bad).await.unwrap();
    let good = rt.submit_job(Job::for_machine("m")).await.unwrap();
    let failed = rt.wait_record(bad).await.unwrap();
    assert_eq!((failed.status, failed.state.as_str()), (JobState::Failed, "start"));
    let error = failed.last_error.unwrap_or_default();
    assert!(error.contains("levels deep"), "{error}");
    assert_eq!(rt.wait_record(good).await.unwrap().status, JobState::Completed);
    rt.verify(bad).await.unwrap();
    rt.shutdown().await.unwrap();
}

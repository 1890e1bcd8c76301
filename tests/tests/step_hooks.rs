//! Step hooks: a hook added to the builder sees every step start and end,
//! in order, with the outcome the runtime commits; the runtime's own
//! metrics count the same steps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use runekernel::job::Job;
use runekernel::{DynamicNext, Runtime, SimpleStateMachine, StepError, StepHook, StepInfo, StepOutcome};

/// Every call, as text.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl StepHook for Recorder {
    fn before(&self, step: &StepInfo<'_>) -> tracing::Span {
        self.0
            .lock()
            .unwrap()
            .push(format!("before {} attempt {}", step.state, step.attempt));
        tracing::Span::none()
    }

    fn after(&self, step: &StepInfo<'_>, outcome: &StepOutcome<'_>, _elapsed: Duration) {
        let outcome = match outcome {
            StepOutcome::Retrying { error, .. } => format!("retrying: {error}"),
            StepOutcome::Failed { error } => format!("failed: {error}"),
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(format!("after {}: {outcome}", step.state));
    }
}

#[tokio::test]
async fn a_hook_sees_each_step_and_how_it_ended() {
    let failed_once = Arc::new(Mutex::new(false));
    let machine = SimpleStateMachine::new("hooked")
        .initial_state("start")
        .state("middle")
        .terminal_state("done")
        .transition("start", "middle")
        .transition("middle", "done")
        .build()
        .unwrap()
        .with_handler(move |_ctx, step| {
            let failed_once = Arc::clone(&failed_once);
            async move {
                if step.state == "start" {
                    return Ok(DynamicNext::to("middle"));
                }
                let mut failed = failed_once.lock().unwrap();
                if !*failed {
                    *failed = true;
                    return Err(StepError::retry("not yet"));
                }
                Ok(DynamicNext::to("done"))
            }
        });
    let recorder = Recorder::default();
    let rt = Runtime::builder()
        .deterministic(7)
        .register(machine)
        .hook(recorder.clone())
        .build()
        .await
        .unwrap();
    let id = rt.submit_job(Job::for_machine("hooked")).await.unwrap();
    rt.run_until_idle().await.unwrap();
    rt.advance(Duration::from_secs(60)).await;
    rt.wait_record(id).await.unwrap();
    let calls = recorder.0.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "before start attempt 1",
            "after start: Advanced { to: \"middle\" }",
            "before middle attempt 1",
            "after middle: retrying: not yet",
            "before middle attempt 2",
            "after middle: Completed { to: \"done\" }",
        ]
    );
    let metrics = rt.metrics().into_iter().find(|m| m.machine == "hooked").unwrap();
    assert_eq!((metrics.steps, metrics.retries, metrics.failures), (3, 1, 0));
    rt.shutdown().await.unwrap();
}

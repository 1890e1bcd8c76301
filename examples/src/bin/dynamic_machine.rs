//! A machine built at run time with `SimpleStateMachine`: a document review
//! whose publication is conditioned on approval, with an async handler that
//! returns the next state's name.

use runekernel::job::Job;
use runekernel::prelude::*;
use runekernel::{DynamicNext, SimpleStateMachine};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let review = SimpleStateMachine::new("review")
        .initial_state("draft")
        .state("in_review")
        .terminal_state("published")
        .terminal_state("rejected")
        .transition("draft", "in_review")
        .transition_if("in_review", "published", "approved", |data| data["approved"] == true)
        .transition("in_review", "rejected");
    for t in review.transitions() {
        println!(
            "{} -> {}{}",
            t.from,
            t.to,
            t.guard.as_ref().map(|g| format!(" if {g}")).unwrap_or_default()
        );
    }
    let machine = review.build()?.with_handler(|_ctx, step| async move {
        Ok(match step.state.as_str() {
            "draft" => {
                let words = step.data["text"]
                    .as_str()
                    .unwrap_or_default()
                    .split_whitespace()
                    .count();
                DynamicNext::to("in_review").with_data(json!({ "text": step.data["text"], "approved": words >= 3 }))
            }
            _ if step.data["approved"] == true => DynamicNext::to("published"),
            _ => DynamicNext::to("rejected"),
        })
    });
    let rt = Runtime::builder().register(machine).build().await?;
    for text in ["runes are carved in stone", "too short"] {
        let mut job = Job::for_machine("review");
        job.set_data("text", text);
        let id = rt.submit_job(job).await?;
        let done = rt.wait_record(id).await?;
        println!("{text:?}: {}", done.state);
    }
    rt.shutdown().await?;
    Ok(())
}

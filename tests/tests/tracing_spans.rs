//! Every step runs inside a `step` span naming the job, its machine, state
//! and attempt, so a handler's own events carry the job.

use std::sync::{Arc, Mutex};

use runekernel::job::Job;
use runekernel::prelude::*;
use runekernel::{DynamicNext, SimpleStateMachine};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's fields as `name=value` words.
struct Fields(String);

struct Words<'a>(&'a mut String);

impl Visit for Words<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

/// Records, for each event whose message contains `marker`, the spans it
/// happened in, innermost first.
struct Capture {
    marker: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = String::new();
        attrs.record(&mut Words(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Fields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut message = String::new();
        event.record(&mut Words(&mut message));
        if !message.contains(self.marker) {
            return;
        }
        let scope = ctx.event_scope(event).map(|scope| {
            scope
                .map(|span| {
                    let extensions = span.extensions();
                    let fields = extensions.get::<Fields>().map_or("", |f| f.0.as_str());
                    format!("{}{{{}}}", span.name(), fields.trim())
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        self.seen.lock().unwrap().push(scope.unwrap_or_default());
    }
}

#[tokio::test]
async fn a_handlers_events_carry_the_job() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture {
        marker: "handler says hello",
        seen: Arc::clone(&seen),
    });
    // This test's runtime runs on its thread, where the subscriber is set.
    let _default = tracing::subscriber::set_default(subscriber);
    let machine = SimpleStateMachine::new("greeter")
        .initial_state("start")
        .terminal_state("done")
        .transition("start", "done")
        .build()
        .unwrap()
        .with_handler(|_ctx, _step| async move {
            tracing::info!("handler says hello");
            Ok(DynamicNext::to("done"))
        });
    let rt = Runtime::builder().register(machine).build().await.unwrap();
    let id = rt.submit_job(Job::for_machine("greeter")).await.unwrap();
    rt.wait_record(id).await.unwrap();
    rt.shutdown().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let step = format!("step{{job={id} machine=greeter state=start attempt=1}}");
    assert!(
        seen[0].starts_with(&step),
        "the handler's event is inside {step}: {}",
        seen[0]
    );
}

//! `GET /events`: a server-sent event stream telling a client (the UI)
//! that jobs changed, so it refreshes only then.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::openapi::Unauthorized;
use super::Admin;
use crate::storage::{JobId, StorageEvent};

/// Changes that arrive within this long of the first are sent as one event.
const GATHER: Duration = Duration::from_millis(200);
/// Most job ids named in one event; past it, `more` is true.
const MAX_IDS: usize = 100;
/// A comment sent this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What one `changed` event reports.
#[derive(Default)]
struct Changes {
    jobs: BTreeSet<JobId>,
    /// Jobs were inserted or made ready, or events were missed.
    more: bool,
}

impl Changes {
    fn note(&mut self, event: Result<StorageEvent, RecvError>) {
        match event {
            Ok(StorageEvent::JobChanged(id)) if self.jobs.len() < MAX_IDS => {
                self.jobs.insert(id);
            }
            _ => self.more = true,
        }
    }
}

/// Waits for the next change, gathers what follows within [`GATHER`], and
/// returns it as one event; `None` once the storage's channel closes.
async fn next_change(events: &mut Receiver<StorageEvent>) -> Option<Event> {
    let mut changes = Changes::default();
    match events.recv().await {
        Err(RecvError::Closed) => return None,
        first => changes.note(first),
    }
    let gathering = tokio::time::sleep(GATHER);
    tokio::pin!(gathering);
    loop {
        tokio::select! {
            () = &mut gathering => break,
            event = events.recv() => match event {
                Err(RecvError::Closed) => break,
                event => changes.note(event),
            },
        }
    }
    let data = json!({ "jobs": changes.jobs, "more": changes.more });
    Some(Event::default().event("changed").data(data.to_string()))
}

/// Server-sent events: `event: changed` with `{"jobs": [ids], "more":
/// bool}` whenever jobs change (`more`: jobs were submitted or made ready,
/// or more changed than listed). Ends when the runtime shuts down.
#[utoipa::path(
    get,
    path = "/events",
    operation_id = "events",
    tag = "meta",
    responses(
        (status = 200, description = "An event stream", body = String, content_type = "text/event-stream"),
        (status = 401, response = inline(Unauthorized)),
    )
)]
pub(crate) async fn stream(State(admin): State<Admin>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = admin.runtime.storage().subscribe();
    let runtime = admin.runtime.clone();
    let changes = futures::stream::unfold((events, runtime), |(mut events, runtime)| async move {
        let event = tokio::select! {
            () = runtime.stopping() => None,
            event = next_change(&mut events) => event,
        }?;
        Some((Ok(event), (events, runtime)))
    });
    Sse::new(changes).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

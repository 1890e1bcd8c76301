//! The views, as markup built from what the API answered. They hold no
//! state and touch no browser API, so they are tested natively.
//!
//! Controls carry `data-action` (and `data-arg`): one listener on the page
//! dispatches them (`app.rs`), so re-rendering a view leaks no handlers.

mod job;
mod jobs;
mod machine;
mod machines;

pub use job::job;
pub use jobs::jobs;
pub use machine::{machine, totals};
pub use machines::machines;

use crate::html::escape;
use crate::model::{Machine, STATUSES};
use crate::route::{Filter, Route};

/// One coloured badge per lifecycle status.
pub fn status_badge(status: &str) -> String {
    format!(r#"<span class="badge s-{0}">{0}</span>"#, escape(status))
}

/// The link to `machine`'s jobs with `status`, escaped for an attribute.
fn jobs_with_status(machine: &Machine, status: &str) -> String {
    let jobs = Route::Jobs(Filter {
        machine: Some(machine.name.clone()),
        status: Some(status.to_owned()),
        state: None,
    });
    escape(&jobs.fragment())
}

/// The colour key.
pub fn legend() -> String {
    let mut out = String::from(r#"<div class="legend">"#);
    for status in STATUSES {
        out.push_str(&format!(r#"<span><i class="dot s-{status}"></i>{status}</span>"#));
    }
    out.push_str(
        r#"<span><i class="key-initial"></i>initial</span><span><i class="key-terminal"></i>terminal</span><span><i class="key-taken"></i>path taken</span></div>"#,
    );
    out
}

/// Pan and zoom buttons for the graph (the wheel and dragging work too).
pub fn zoom_controls() -> String {
    r#"<div class="zoom"><button data-action="zoom-in" title="zoom in">+</button><button data-action="zoom-out" title="zoom out">−</button><button data-action="zoom-reset" title="fit">fit</button></div>"#.to_owned()
}

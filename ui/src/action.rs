//! The actions an operator can take on a job, each an admin API request
//! that the UI sends only after the operator confirms it.

use serde_json::{json, Value};

use crate::route::encode;

/// One action on one job.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Cancel,
    RunNow,
    /// Run a failed or cancelled job again from the state it stopped in.
    Retry,
    /// Move along a declared transition to `target`, sending `state` (the
    /// target state in the enum's JSON form).
    Move {
        target: String,
        state: Value,
    },
}

impl Action {
    /// A move to `target` (stored name `target`, JSON name `json_name`);
    /// `fields` is what the operator typed for a state that carries data.
    ///
    /// # Errors
    /// A message naming the problem when `fields` is not JSON.
    pub fn move_to(target: &str, json_name: &str, carries_data: bool, fields: &str) -> Result<Action, String> {
        let state = if carries_data {
            let fields: Value = serde_json::from_str(fields.trim())
                .map_err(|e| format!("`{target}` carries data: type its fields as JSON ({e})"))?;
            json!({ json_name: fields })
        } else {
            Value::String(json_name.to_owned())
        };
        Ok(Action::Move {
            target: target.to_owned(),
            state,
        })
    }

    /// The question the confirmation asks.
    pub fn question(&self, job: &str) -> String {
        match self {
            Action::Cancel => format!("Cancel job {job}? A running step finishes first; the job then stops for good."),
            Action::RunNow => format!("Run job {job} now, ahead of its schedule?"),
            Action::Retry => {
                format!("Retry job {job} from the state it stopped in? Its attempts start again.")
            }
            Action::Move { target, .. } => format!("Move job {job} to `{target}`? Its handler will run from there."),
        }
    }

    /// The request: method, path below the API's root, and JSON body.
    pub fn request(&self, job: &str) -> (&'static str, String, Option<Value>) {
        let id = encode(job);
        match self {
            Action::Cancel => ("POST", format!("/jobs/{id}/cancel"), None),
            Action::RunNow => ("POST", format!("/jobs/{id}/run"), None),
            Action::Retry => ("POST", format!("/jobs/{id}/retry"), None),
            Action::Move { state, .. } => ("PUT", format!("/jobs/{id}/state"), Some(json!({ "state": state }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_sends_the_target_in_the_enums_json() {
        let unit = Action::move_to("Cancelled", "Cancelled", false, "").unwrap();
        assert_eq!(
            unit.request("j1"),
            ("PUT", "/jobs/j1/state".to_owned(), Some(json!({"state": "Cancelled"})))
        );
        let data = Action::move_to("Paid", "Paid", true, r#" {"amount": 5} "#).unwrap();
        assert_eq!(data.request("j1").2, Some(json!({"state": {"Paid": {"amount": 5}}})));
    }

    #[test]
    fn fields_that_are_not_json_are_refused_before_sending() {
        let error = Action::move_to("Paid", "Paid", true, "{amount: 5").unwrap_err();
        assert!(
            error.starts_with("`Paid` carries data: type its fields as JSON"),
            "{error}"
        );
    }
}

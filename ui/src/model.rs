//! What the admin API answers, as the UI reads it, and what the UI derives
//! from it (a job's path through its machine).

use serde::Deserialize;
use serde_json::Value;

/// The lifecycle statuses, in the order the UI shows them.
pub const STATUSES: [&str; 5] = ["pending", "running", "completed", "failed", "cancelled"];

/// A machine with its live counts (`GET /machines`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Machine {
    pub name: String,
    pub states: Vec<State>,
    pub transitions: Vec<Transition>,
    /// Per state, per status: `{"Paid": {"pending": 3}}`. (Kept as JSON:
    /// typed maps would add their own code to the wasm for two lookups.)
    #[serde(default)]
    pub counts: Value,
    /// Per status: `{"pending": 3}`.
    #[serde(default)]
    pub totals: Value,
}

/// Every registered machine (`GET /machines`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Machines {
    pub machines: Vec<Machine>,
}

/// What an action on a job answers: the job afterwards, of which the UI
/// reports its status (and, for a cancel, what the cancel did).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Acted {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub cancel: Option<String>,
}

/// One state of a machine.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct State {
    pub name: String,
    /// The enum variant's name where it differs from the stored one.
    #[serde(default)]
    pub variant: Option<String>,
    /// `unit`, `tuple`, `struct` or `data`.
    #[serde(default)]
    pub shape: Value,
    #[serde(default)]
    pub initial: bool,
    #[serde(default)]
    pub terminal: bool,
}

impl State {
    /// Its name in the enum's JSON.
    pub fn json_name(&self) -> &str {
        self.variant.as_deref().unwrap_or(&self.name)
    }

    /// Whether it carries fields (so moving a job there needs a payload).
    pub fn carries_data(&self) -> bool {
        self.shape != Value::String("unit".into())
    }
}

/// One declared transition.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Transition {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub guard: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

impl Machine {
    /// The state named `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|s| s.name == name)
    }

    /// The states a job in `from` may be moved to, in declaration order,
    /// each once.
    pub fn targets(&self, from: &str) -> Vec<&State> {
        let mut out: Vec<&State> = Vec::new();
        for t in self.transitions.iter().filter(|t| t.from == from) {
            if let Some(state) = self.state(&t.to) {
                if !out.iter().any(|s| s.name == state.name) {
                    out.push(state);
                }
            }
        }
        out
    }

    /// How many of its jobs are in `state` with `status`.
    pub fn count(&self, state: &str, status: &str) -> u64 {
        self.counts[state][status].as_u64().unwrap_or(0)
    }

    /// How many of its jobs have `status`.
    pub fn total(&self, status: &str) -> u64 {
        self.totals[status].as_u64().unwrap_or(0)
    }
}

/// One job (`GET /jobs/{id}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Job {
    pub id: String,
    pub machine: String,
    /// The state in the enum's JSON form.
    pub state: Value,
    pub state_name: String,
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(default)]
    pub run_at_ms: i64,
    #[serde(default)]
    pub created_at_ms: i64,
    #[serde(default)]
    pub updated_at_ms: i64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A page of jobs (`GET /jobs`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next: Option<String>,
    /// How many jobs match the filter, from the counts query.
    #[serde(default)]
    pub matching: u64,
}

/// One entry of a job's history.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub from: Option<String>,
    pub to: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    pub at: i64,
    pub attempt: u32,
    #[serde(default)]
    pub worker: Option<String>,
}

/// A job's history and the path it took (`GET /jobs/{id}/history`).
/// `GET /whoami`: what the token may do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WhoAmI {
    /// `operator`, `read_only`, or `machines` (may change the jobs of
    /// `machines` only).
    pub role: String,
    /// The machines a `machines` token may change the jobs of.
    #[serde(default)]
    pub machines: Vec<String>,
}

impl WhoAmI {
    /// Whether the token may change the jobs of `machine`.
    pub fn may_change(&self, machine: &str) -> bool {
        match self.role.as_str() {
            "operator" => true,
            "machines" => self.machines.iter().any(|m| m == machine),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct History {
    pub history: Vec<Entry>,
    pub path: Path,
}

/// Where a job has been: the states it visited and the transitions it took
/// (`[from, to]`), each once, in the order first taken.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Path {
    pub visited: Vec<String>,
    pub edges: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_may_change_what_its_role_allows() {
        let who = |value| serde_json::from_value::<WhoAmI>(value).unwrap();
        let operator = who(serde_json::json!({"role": "operator"}));
        let reader = who(serde_json::json!({"role": "read_only"}));
        let billing = who(serde_json::json!({"role": "machines", "token": "billing", "machines": ["invoice"]}));
        assert!(operator.may_change("order") && !reader.may_change("order"));
        assert!(billing.may_change("invoice") && !billing.may_change("order"));
    }

    #[test]
    fn reads_a_history_with_its_path() {
        let history: History = serde_json::from_value(serde_json::json!({
            "id": "j1",
            "path": {"visited": ["A", "B"], "edges": [["A", "B"]]},
            "history": [{"seq": 0, "from": null, "to": "A", "status": "pending", "at": 5, "attempt": 0, "payload": null}]
        }))
        .unwrap();
        assert_eq!(history.path.edges, [("A".to_owned(), "B".to_owned())]);
        assert_eq!(history.history[0].to, "A");
    }

    #[test]
    fn targets_are_the_declared_ones_from_a_state() {
        let machine: Machine = serde_json::from_value(serde_json::json!({
            "name": "m",
            "states": [
                {"name": "A", "shape": "unit", "initial": true, "terminal": false},
                {"name": "B", "shape": "struct", "initial": false, "terminal": false},
                {"name": "C", "shape": "unit", "initial": false, "terminal": true}
            ],
            "transitions": [
                {"from": "A", "to": "B", "guard": "g"},
                {"from": "A", "to": "B", "label": "again"},
                {"from": "B", "to": "C"}
            ]
        }))
        .unwrap();
        let names: Vec<&str> = machine.targets("A").iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["B"]);
        assert!(machine.targets("C").is_empty());
        assert!(machine.state("B").unwrap().carries_data());
        assert!(!machine.state("C").unwrap().carries_data());
    }
}

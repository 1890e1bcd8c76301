//! The bodies the admin API answers with. Each is the one form its JSON
//! takes: the handlers serialize it and the OpenAPI document describes it
//! from the same type.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::Admin;
use crate::machine::MachineDef;
use crate::storage::{CountRow, HistoryEntry, JobId, JobRecord, JobState};

/// A machine state as the enum's serde JSON, externally tagged:
/// `{"Created": {"sku": "a", "qty": 1}}`, or `"Cancelled"` for a state
/// without data. Only named in the document; the JSON itself is a
/// [`Value`].
pub(crate) struct StateJson;

impl PartialSchema for StateJson {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .min_properties(Some(1))
                    .max_properties(Some(1)),
            )
            .description(Some(
                "A machine state as the enum's serde JSON, externally tagged: \
                 `{\"Created\": {\"sku\": \"a\", \"qty\": 1}}`, or `\"Cancelled\"` for a state without data",
            ))
            .into()
    }
}

impl ToSchema for StateJson {
    fn name() -> std::borrow::Cow<'static, str> {
        "State".into()
    }
}

/// What `POST /jobs/{id}/cancel` did.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CancelResult {
    /// The job was pending and is now cancelled.
    Cancelled,
    /// The job is running; it is cancelled when its step ends.
    Requested,
    /// The job had already finished; nothing changed.
    AlreadyFinished,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Job)]
pub(crate) struct JobJson {
    id: JobId,
    machine: String,
    /// The queue it waits in.
    queue: String,
    /// Its state in the enum's own JSON form.
    #[schema(value_type = StateJson)]
    state: Value,
    /// The state's stored name.
    state_name: String,
    status: JobState,
    attempts: u32,
    max_attempts: u32,
    /// Lower runs first.
    priority: i32,
    /// When it may next run, in milliseconds since the Unix epoch.
    run_at_ms: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
    /// Bumped by every change.
    version: u64,
    last_error: Option<String>,
    /// The fingerprint of the definition that wrote its state, as 16 hex
    /// digits.
    fingerprint: String,
    /// Only in the answer of a cancel: what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel: Option<CancelResult>,
}

impl JobJson {
    /// `record` as the API shows it: its state in the enum's own JSON form
    /// when its machine is registered, `{state: payload}` otherwise.
    pub(crate) fn new(admin: &Admin, record: &JobRecord) -> Self {
        let state = match admin.runtime.machine(&record.machine) {
            Some(def) => def.state_to_json(&record.state, &record.payload),
            None => json!({ &record.state: record.payload }),
        };
        JobJson {
            id: record.id,
            machine: record.machine.clone(),
            queue: record.queue.clone(),
            state,
            state_name: record.state.clone(),
            status: record.status,
            attempts: record.attempts,
            max_attempts: record.max_attempts,
            priority: record.priority,
            run_at_ms: record.run_at,
            created_at_ms: record.created_at,
            updated_at_ms: record.updated_at,
            version: record.version,
            last_error: record.last_error.clone(),
            fingerprint: format!("{:016x}", record.fingerprint),
            cancel: None,
        }
    }

    /// The same job, answering a cancel.
    pub(crate) fn cancelled(self, result: CancelResult) -> Self {
        JobJson {
            cancel: Some(result),
            ..self
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JobPage)]
pub(crate) struct JobPageJson {
    pub(crate) jobs: Vec<JobJson>,
    /// The `after` that continues the listing; `null` on the last page.
    pub(crate) next: Option<JobId>,
    /// How many jobs match the filter.
    pub(crate) matching: u64,
}

/// Where a job has been.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = JobPath)]
pub(crate) struct PathJson {
    /// States reached, in the order first reached.
    visited: Vec<String>,
    /// Transitions taken as `[from, to]`, each once, in the order first
    /// taken.
    edges: Vec<[String; 2]>,
}

impl PathJson {
    /// The states `history` visited and the transitions it took.
    pub(crate) fn new(history: &[HistoryEntry]) -> Self {
        let mut path = PathJson {
            visited: Vec::new(),
            edges: Vec::new(),
        };
        for entry in history {
            if !path.visited.contains(&entry.to) {
                path.visited.push(entry.to.clone());
            }
            if let Some(from) = entry.from.as_ref().filter(|from| **from != entry.to) {
                let edge = [from.clone(), entry.to.clone()];
                if !path.edges.contains(&edge) {
                    path.edges.push(edge);
                }
            }
        }
        path
    }
}

/// A job's history, oldest first, and the path it took.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JobHistory)]
pub(crate) struct HistoryJson {
    pub(crate) id: JobId,
    pub(crate) path: PathJson,
    pub(crate) history: Vec<HistoryEntry>,
}

/// A machine's definition with live counts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Machine)]
pub(crate) struct MachineJson<'a> {
    #[serde(flatten)]
    definition: &'a MachineDef,
    /// state -> status -> count.
    counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// status -> count.
    totals: BTreeMap<String, u64>,
    /// The graph as a Mermaid `stateDiagram-v2` (one machine only).
    #[serde(skip_serializing_if = "Option::is_none")]
    mermaid: Option<String>,
    /// The graph in Graphviz DOT (one machine only).
    #[serde(skip_serializing_if = "Option::is_none")]
    dot: Option<String>,
}

impl<'a> MachineJson<'a> {
    /// `definition` with its counts picked from `counts`.
    pub(crate) fn new(definition: &'a MachineDef, counts: &[CountRow]) -> Self {
        let mut by_state: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        for row in counts.iter().filter(|r| r.machine == definition.name()) {
            *by_state
                .entry(row.state.clone())
                .or_default()
                .entry(row.status.as_str().to_owned())
                .or_default() += row.count;
            *by_status.entry(row.status.as_str().to_owned()).or_default() += row.count;
        }
        MachineJson {
            definition,
            counts: by_state,
            totals: by_status,
            mermaid: None,
            dot: None,
        }
    }

    /// With the graph drawn in Mermaid and DOT.
    pub(crate) fn with_drawings(self) -> Self {
        MachineJson {
            mermaid: Some(self.definition.to_mermaid()),
            dot: Some(self.definition.to_dot()),
            ..self
        }
    }
}

/// Every registered machine.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MachineList)]
pub(crate) struct MachineListJson<'a> {
    pub(crate) machines: Vec<MachineJson<'a>>,
}

/// What a bulk change did to one page of the jobs its filter matches.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkPage)]
pub(crate) struct BulkJson {
    /// How many jobs of the page it changed.
    touched: u64,
    /// Send as `after` to go on with the next page; `null` after the last.
    next: Option<JobId>,
}

impl From<crate::BulkPage> for BulkJson {
    fn from(page: crate::BulkPage) -> Self {
        BulkJson {
            touched: page.touched,
            next: page.next,
        }
    }
}

/// `GET /whoami`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WhoAmI {
    /// What the token may do: `operator` (everything), `read_only`
    /// (read), or `machines` (read, and change the jobs of `machines`).
    #[schema(value_type = String)]
    role: &'static str,
    /// A machine token's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The machines whose jobs a machine token may change.
    #[serde(skip_serializing_if = "Option::is_none")]
    machines: Option<Vec<String>>,
}

impl WhoAmI {
    pub(crate) fn new(role: &super::auth::Role) -> Self {
        use super::auth::Role;
        match role {
            Role::Operator => WhoAmI {
                role: "operator",
                token: None,
                machines: None,
            },
            Role::ReadOnly => WhoAmI {
                role: "read_only",
                token: None,
                machines: None,
            },
            Role::Machines { name, machines } => WhoAmI {
                role: "machines",
                token: Some(name.to_string()),
                machines: Some(machines.to_vec()),
            },
        }
    }
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Health)]
pub(crate) struct HealthJson {
    /// Always `ok`: a failing storage answers 500 instead.
    pub(crate) status: &'static str,
    /// How many machines the runtime has registered.
    pub(crate) machines: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(from: Option<&str>, to: &str) -> HistoryEntry {
        HistoryEntry {
            seq: 0,
            from: from.map(str::to_owned),
            to: to.to_owned(),
            status: JobState::Running,
            error: None,
            at: 0,
            attempt: 1,
            worker: None,
            payload: Value::Null,
        }
    }

    #[test]
    fn a_path_names_each_state_and_transition_once() {
        let history = [
            entry(None, "Drafted"),
            entry(Some("Drafted"), "Sent"),
            entry(Some("Sent"), "Reminded"),
            entry(Some("Reminded"), "Sent"),
            entry(Some("Sent"), "Sent"),
            entry(Some("Sent"), "Reminded"),
        ];
        assert_eq!(
            serde_json::to_value(PathJson::new(&history)).ok(),
            Some(json!({
                "visited": ["Drafted", "Sent", "Reminded"],
                "edges": [["Drafted", "Sent"], ["Sent", "Reminded"], ["Reminded", "Sent"]]
            }))
        );
    }
}

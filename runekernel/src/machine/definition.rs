//! [`MachineDef`]: the static description of a machine (states, initial,
//! terminals, transitions with guards and labels), its builder, and its
//! [`Fingerprint`].

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::graph::{self, GraphSpec, StateSpec, TransitionSpec};
use super::graph_error::{GraphError, GraphProblem};

/// How a state holds its data, which decides its JSON form in the admin API
/// (serde's externally tagged enum representation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StateShape {
    /// No data: `"Cancelled"`.
    Unit,
    /// A tuple variant with this many fields: `{"Paid": 100}` for one field,
    /// `{"Moved": [1, 2]}` for more.
    Tuple(usize),
    /// A struct variant: `{"Created": {"sku": "a", "qty": 1}}`.
    Struct,
    /// Any JSON value (a dynamic machine's data): `{"draft": {...}}`.
    #[default]
    Data,
}

/// One state of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
pub struct StateDef {
    /// The stored name.
    pub name: String,
    /// The Rust variant's name, when it differs from the stored name
    /// (`#[state(name = "..")]`); the JSON form uses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// How the state holds its data.
    pub shape: StateShape,
    /// Jobs start here.
    pub initial: bool,
    /// Jobs end here; it has no outgoing transitions and no handler.
    pub terminal: bool,
    /// Per-state step timeout (`#[state(timeout_ms = N)]`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "millis")]
    #[cfg_attr(feature = "admin", schema(value_type = Option<u64>))]
    pub timeout: Option<Duration>,
    /// Per-state attempt limit (`#[state(max_attempts = N)]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl StateDef {
    /// A non-initial, non-terminal state with no limits of its own.
    pub fn new(name: impl Into<String>) -> Self {
        StateDef {
            name: name.into(),
            variant: None,
            shape: StateShape::Data,
            initial: false,
            terminal: false,
            timeout: None,
            max_attempts: None,
        }
    }

    /// Marks it as the initial state.
    #[must_use]
    pub fn initial(mut self) -> Self {
        self.initial = true;
        self
    }

    /// Marks it as a terminal state.
    #[must_use]
    pub fn terminal(mut self) -> Self {
        self.terminal = true;
        self
    }

    /// Records the Rust variant's name, when it differs from the stored name.
    #[must_use]
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Records how the state holds its data.
    #[must_use]
    pub fn with_shape(mut self, shape: StateShape) -> Self {
        self.shape = shape;
        self
    }

    /// The name the state has in JSON: its Rust variant's name, or its
    /// stored name.
    pub fn json_name(&self) -> &str {
        self.variant.as_deref().unwrap_or(&self.name)
    }

    /// Sets the step timeout for this state.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the attempt limit for this state.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }
}

fn millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u128(d.as_millis()),
        None => s.serialize_none(),
    }
}

/// An allowed state change, with an optional guard (by name) and label.
///
/// The same type describes the transitions of a derived machine
/// ([`MachineDef::transitions`]) and of a dynamic one
/// (`SimpleStateMachine::transitions`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
pub struct Transition {
    /// Stored name of the source state.
    pub from: String,
    /// Stored name of the target state.
    pub to: String,
    /// The guard's name (`guard = path`), if the transition has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// A human-readable label (`label = ".."`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Transition {
    /// An unguarded, unlabelled transition.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Transition {
            from: from.into(),
            to: to.into(),
            guard: None,
            label: None,
        }
    }

    /// Names the guard that decides this transition.
    #[must_use]
    pub fn with_guard(mut self, guard: impl Into<String>) -> Self {
        self.guard = Some(guard.into());
        self
    }

    /// Sets the label shown in rendered graphs.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// A stable 64-bit hash of a machine's graph: its name, its states with their
/// initial/terminal marks, and its transitions (as sets, so declaration order
/// does not matter). Labels, guards, limits and the version are not part of
/// it. Every stored job records the fingerprint of the machine it was written
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The static description of a machine.
///
/// Derived machines get theirs from [`StateMachine::definition`](crate::StateMachine::definition);
/// dynamic ones build it with [`MachineDef::builder`], which applies the same
/// graph rules the derive checks at compile time.
///
/// ```
/// use runekernel::{MachineDef, StateDef, Transition};
///
/// let def = MachineDef::builder("review")
///     .state(StateDef::new("draft").initial())
///     .state(StateDef::new("published").terminal())
///     .transition(Transition::new("draft", "published").with_label("approve"))
///     .build()?;
/// assert_eq!(def.initial().name, "draft");
/// assert!(def.to_mermaid().contains("draft --> published: approve"));
/// # Ok::<(), runekernel::GraphError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "admin",
    derive(utoipa::ToSchema),
    schema(description = "A machine's definition: its name, version, fingerprint, states and transitions")
)]
pub struct MachineDef {
    name: String,
    version: u32,
    /// The queue its jobs wait in unless a submission names another.
    queue: String,
    allow_cycles: bool,
    states: Vec<StateDef>,
    transitions: Vec<Transition>,
    /// The graph's fingerprint, as 16 hex digits.
    #[cfg_attr(feature = "admin", schema(value_type = String))]
    fingerprint: Fingerprint,
}

impl MachineDef {
    /// Starts describing a machine called `name`.
    pub fn builder(name: impl Into<String>) -> MachineDefBuilder {
        MachineDefBuilder {
            name: name.into(),
            version: 1,
            queue: crate::storage::DEFAULT_QUEUE.to_owned(),
            allow_cycles: false,
            states: Vec::new(),
            transitions: Vec::new(),
        }
    }

    /// The machine's stored name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared version (`#[machine(version = N)]`, default 1).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The queue its jobs wait in unless a submission names another
    /// (`#[machine(queue = "emails")]`, default
    /// [`DEFAULT_QUEUE`](crate::storage::DEFAULT_QUEUE)).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Whether states that cannot reach a terminal state are allowed.
    pub fn allows_cycles(&self) -> bool {
        self.allow_cycles
    }

    /// Every state, in declaration order.
    pub fn states(&self) -> &[StateDef] {
        &self.states
    }

    /// The state with this stored name.
    pub fn state(&self, name: &str) -> Option<&StateDef> {
        self.states.iter().find(|s| s.name == name)
    }

    /// The initial state.
    pub fn initial(&self) -> &StateDef {
        // A built definition always has exactly one initial state (the graph
        // rules guarantee it); the first state is a harmless fallback.
        self.states.iter().find(|s| s.initial).unwrap_or(&self.states[0])
    }

    /// The terminal states.
    pub fn terminals(&self) -> impl Iterator<Item = &StateDef> {
        self.states.iter().filter(|s| s.terminal)
    }

    /// Every transition, in declaration order.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The transitions out of `state`.
    pub fn transitions_from<'a>(&'a self, state: &'a str) -> impl Iterator<Item = &'a Transition> {
        self.transitions.iter().filter(move |t| t.from == state)
    }

    /// The declared transition from `from` to `to`, if any.
    pub fn transition(&self, from: &str, to: &str) -> Option<&Transition> {
        self.transitions.iter().find(|t| t.from == from && t.to == to)
    }

    /// The graph's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    fn compute_fingerprint(name: &str, states: &[StateDef], transitions: &[Transition]) -> Fingerprint {
        // FNV-1a over a canonical text: sorted states and sorted edges.
        let mut lines: Vec<String> = states
            .iter()
            .map(|s| format!("s {} {} {}", s.name, u8::from(s.initial), u8::from(s.terminal)))
            .collect();
        lines.extend(transitions.iter().map(|t| format!("t {} {}", t.from, t.to)));
        lines.sort();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes().chain(lines.join("\n").into_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Fingerprint(hash)
    }
}

/// Builds a [`MachineDef`]; [`build`](Self::build) checks the graph rules.
#[derive(Debug, Clone)]
#[must_use]
pub struct MachineDefBuilder {
    name: String,
    version: u32,
    queue: String,
    allow_cycles: bool,
    states: Vec<StateDef>,
    transitions: Vec<Transition>,
}

impl MachineDefBuilder {
    /// Sets the version (default 1).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Sets the queue its jobs wait in unless a submission names another
    /// (default [`DEFAULT_QUEUE`](crate::storage::DEFAULT_QUEUE)).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Accepts states from which no terminal state can be reached.
    pub fn allow_cycles(mut self, allow: bool) -> Self {
        self.allow_cycles = allow;
        self
    }

    /// Adds a state.
    pub fn state(mut self, state: StateDef) -> Self {
        self.states.push(state);
        self
    }

    /// Adds a transition.
    pub fn transition(mut self, transition: Transition) -> Self {
        self.transitions.push(transition);
        self
    }

    /// Checks the graph with the rules the derive applies at compile time
    /// and returns the definition.
    ///
    /// # Errors
    /// A [`GraphError`] listing every problem found, not just the first.
    pub fn build(self) -> Result<MachineDef, GraphError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(self.build_unchecked())
        } else {
            Err(GraphError {
                machine: self.name,
                problems,
            })
        }
    }

    /// Every broken graph rule, described.
    fn problems(&self) -> Vec<GraphProblem> {
        let mut spec = GraphSpec {
            states: self
                .states
                .iter()
                .map(|s| StateSpec {
                    name: &s.name,
                    initial: s.initial,
                    terminal: s.terminal,
                })
                .collect(),
            transitions: Vec::new(),
            allow_cycles: self.allow_cycles,
        };
        let mut unknown_sources = Vec::new();
        for t in &self.transitions {
            match self.states.iter().position(|s| s.name == t.from) {
                Some(from) => spec.transitions.push(TransitionSpec { from, to: &t.to }),
                None => unknown_sources.push(GraphProblem::UnknownSource {
                    from: t.from.clone(),
                    to: t.to.clone(),
                    suggestion: graph::suggest(&t.from, self.states.iter().map(|s| s.name.as_str())).map(str::to_owned),
                }),
            }
        }
        let mut problems: Vec<GraphProblem> = unknown_sources;
        problems.extend(
            graph::check(&spec)
                .into_iter()
                .map(|p| GraphProblem::from_rule(&p, &spec)),
        );
        problems
    }

    /// Builds without checking; used by the derive, whose graph was already
    /// checked at compile time by the same rules.
    pub(crate) fn build_unchecked(self) -> MachineDef {
        let fingerprint = MachineDef::compute_fingerprint(&self.name, &self.states, &self.transitions);
        MachineDef {
            name: self.name,
            version: self.version,
            queue: self.queue,
            allow_cycles: self.allow_cycles,
            states: self.states,
            transitions: self.transitions,
            fingerprint,
        }
    }
}

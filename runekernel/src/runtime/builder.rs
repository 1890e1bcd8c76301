//! [`RuntimeBuilder`]: storage, workers, machines, resources, policies, and
//! deterministic mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::task::TaskTracker;

use crate::context::Resources;
use crate::job::lifecycle_machine;
use crate::machine::StateMachine;
use crate::signal::Signal;
use crate::storage::{InMemoryStorage, Storage};

use super::clock::Clock;
use super::hooks::{Hooks, StepHook, StepSpan};
use super::ids::IdSource;
use super::lease::{heartbeat_loop, ActiveJobs, LeaseHealth};
use super::periodic::{periodic_loop, Periodic, PeriodicJobs, Schedule};
use super::policy::{Backoff, Policies};
use super::producer::{produce, Lane};
use super::queues::ServedQueues;
use super::registry::Registry;
use super::slots::Slots;
use super::{Inner, Result, Runtime, RuntimeError};
use crate::registration::Registration;

/// Configures a [`Runtime`]. Start with [`Runtime::builder`].
#[must_use]
pub struct RuntimeBuilder {
    storage: Option<Arc<dyn Storage>>,
    workers: usize,
    registry: Registry,
    policies: Policies,
    resources: Resources,
    deterministic: Option<u64>,
    worker_id: Option<String>,
    shutdown_timeout: Duration,
    hooks: Vec<Arc<dyn StepHook>>,
    periodic: Vec<Periodic>,
    /// The queues named by [`queue`](Self::queue), with their limits.
    queues: Vec<(String, usize)>,
}

impl RuntimeBuilder {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        registry.add(lifecycle_machine().into());
        RuntimeBuilder {
            storage: None,
            workers: 8,
            registry,
            policies: Policies::default(),
            resources: Resources::default(),
            deterministic: None,
            worker_id: None,
            shutdown_timeout: Duration::from_secs(30),
            hooks: Vec::new(),
            periodic: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// Where jobs are stored. Default: a new [`InMemoryStorage`].
    pub fn storage(self, storage: impl Storage) -> Self {
        self.shared_storage(Arc::new(storage))
    }

    /// Where jobs are stored, as a shared handle (to keep using it, or share
    /// it between runtimes).
    pub fn shared_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// How many steps run at once. Default: 8.
    ///
    /// Zero builds a runtime that submits, reads and administers jobs but
    /// runs none in the background: a web process that hands work to worker
    /// processes sharing its storage. [`Runtime::run_job`] still runs a job
    /// in the calling task.
    ///
    /// ```
    /// # use runekernel::{Runtime, RuntimeError};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), RuntimeError> {
    /// let submitter = Runtime::builder().workers(0).build().await?;
    /// # submitter.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Serves queue `name`, with at most `workers` of its steps at once
    /// (and never more than [`workers`](Self::workers) steps in all).
    ///
    /// By default a runtime serves the queues of the machines it registers
    /// (`#[machine(queue = "...")]`, else `"default"`), each limited only by
    /// the runtime's workers. Once `queue` is called, it serves the queues
    /// named this way and no others: a process can work one queue alone, or
    /// keep a slow queue from taking every worker. A job submitted to a
    /// queue no runtime serves waits until one does.
    ///
    /// ```
    /// # use runekernel::{Runtime, RuntimeError};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), RuntimeError> {
    /// let rt = Runtime::builder()
    ///     .workers(16)
    ///     .queue("default", 16)
    ///     .queue("emails", 2) // at most 2 emails at once, whatever waits
    ///     .build()
    ///     .await?;
    /// # rt.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn queue(mut self, name: impl Into<String>, workers: usize) -> Self {
        self.queues.push((name.into(), workers));
        self
    }

    /// Registers a machine: a typed handler (`Order::handler(shop)`) or a
    /// dynamic machine. This runtime claims only jobs of registered machines.
    pub fn register(mut self, machine: impl Into<Registration>) -> Self {
        self.registry.add(machine.into());
        self
    }

    /// A shared value every step can reach with `ctx.resource::<T>()`.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Deterministic mode: a manual clock (moved by `Runtime::advance`), job
    /// ids and backoff jitter from `seed`, and no background workers: steps run
    /// when `Runtime::run_until_idle` is called, one at a time in (priority,
    /// run_at, id) order. The same inputs give the same history.
    pub fn deterministic(mut self, seed: u64) -> Self {
        self.deterministic = Some(seed);
        self
    }

    /// All policies at once.
    pub fn policies(mut self, policies: Policies) -> Self {
        self.policies = policies;
        self
    }

    /// How long a lease lasts without a heartbeat. Default: 30 s.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.policies.lease = lease;
        self
    }

    /// How often leases are extended. Default: 10 s; must be shorter than
    /// the lease.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.policies.heartbeat = every;
        self
    }

    /// The default step timeout. Default: 5 min.
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.policies.step_timeout = timeout;
        self
    }

    /// The default attempts per step. Default: 5.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policies.max_attempts = attempts;
        self
    }

    /// The retry backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.policies.backoff = backoff;
        self
    }

    /// How long a cancelled step may run on. Default: 5 s.
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.policies.cancel_grace = grace;
        self
    }

    /// Calls `hook` around every step, after the runtime's own (its `step`
    /// span and its metrics) and after the hooks added before it. See
    /// [`StepHook`].
    pub fn hook(mut self, hook: impl StepHook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Submits a job of `M`, made by `make`, at every tick of `schedule`,
    /// under the name `name` (unique among the periodic jobs of the
    /// runtimes sharing a storage). Each tick has one job however many
    /// runtimes share the storage and register the same schedule: its
    /// idempotency key is `periodic:{name}:{tick}`, and its `run_at` the
    /// tick. When a runtime starts, it submits the latest tick at or before
    /// now (or each one within the schedule's
    /// [`catch_up`](Schedule::catch_up) window) unless a job for it exists:
    /// so the tick a downtime missed runs. A key is kept as long as its job
    /// is; keep finished jobs (see [`Retention`](crate::Retention)) at
    /// least as long as the schedule's period, or a runtime that starts
    /// after a tick's job was pruned submits that tick again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use runekernel::prelude::*;
    /// use runekernel::Schedule;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(StateMachine, Debug, Clone, PartialEq, Serialize, Deserialize)]
    /// enum Cleanup {
    ///     #[state(initial)]
    ///     #[transition(to = Done)]
    ///     Start,
    ///     #[state(terminal)]
    ///     Done,
    /// }
    ///
    /// struct Sweep;
    ///
    /// impl CleanupHandler for Sweep {
    ///     async fn start(&self, _ctx: &JobContext) -> Result<CleanupStartNext, StepError> {
    ///         Ok(CleanupStartNext::Done)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = Runtime::builder()
    ///     .deterministic(1)
    ///     .register(Cleanup::handler(Sweep))
    ///     .periodic("cleanup", Schedule::every(Duration::from_secs(300))?, || Cleanup::Start)
    ///     .build()
    ///     .await?;
    /// assert_eq!(rt.run_until_idle().await?, 1, "the latest tick, as the runtime starts");
    /// rt.advance(Duration::from_secs(300)).await;
    /// assert_eq!(rt.run_until_idle().await?, 1, "the next tick");
    /// # Ok(())
    /// # }
    /// ```
    pub fn periodic<M, F>(mut self, name: impl Into<String>, schedule: Schedule, make: F) -> Self
    where
        M: StateMachine,
        F: Fn() -> M + Send + Sync + 'static,
    {
        self.periodic.push(Periodic::new(name.into(), schedule, make));
        self
    }

    /// How long `shutdown` lets running steps finish. Default: 30 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The name this runtime's worker records in leases and history.
    /// Default: `worker-<pid>-<random>`.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Builds the runtime and, unless deterministic or without workers,
    /// starts its workers.
    ///
    /// # Errors
    /// [`RuntimeError::Config`] for settings that cannot work, or when called
    /// outside a tokio runtime.
    pub async fn build(self) -> Result<Runtime> {
        self.start()
    }

    fn check(&self) -> Result<()> {
        let p = &self.policies;
        let problem = if p.lease.is_zero() {
            Some("the lease must be longer than zero".to_owned())
        } else if p.heartbeat >= p.lease {
            Some(format!(
                "the heartbeat ({:?}) must be shorter than the lease ({:?}), or leases run out while jobs run",
                p.heartbeat, p.lease
            ))
        } else if p.max_attempts == 0 {
            Some("max_attempts must be at least 1".to_owned())
        } else if p.claim_batch == 0 || p.max_steps_per_claim == 0 {
            Some("claim_batch and max_steps_per_claim must be at least 1".to_owned())
        } else {
            self.queue_problem()
        };
        problem.map_or(Ok(()), |p| Err(RuntimeError::Config(p)))
    }

    /// What is wrong with the queues, if anything: an empty name, a
    /// queue named twice, a limit of zero, a machine with an empty queue.
    fn queue_problem(&self) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        for (name, workers) in &self.queues {
            if name.trim().is_empty() {
                return Some("a queue's name is empty".to_owned());
            }
            if !seen.insert(name) {
                return Some(format!("the queue `{name}` is named twice"));
            }
            if *workers == 0 {
                return Some(format!(
                    "the queue `{name}` is served with 0 workers; leave it out to not serve it"
                ));
            }
        }
        self.registry
            .definitions()
            .find(|def| def.queue().trim().is_empty())
            .map(|def| format!("the machine `{}` names an empty queue", def.name()))
    }

    pub(crate) fn start(self) -> Result<Runtime> {
        self.check()?;
        let deterministic = self.deterministic.is_some();
        let handle = if deterministic {
            None
        } else {
            Some(tokio::runtime::Handle::try_current().map_err(|_| {
                RuntimeError::Config("a runtime must be built inside a tokio runtime (#[tokio::main])".to_owned())
            })?)
        };
        let (clock, ids, rng, worker_id) = match self.deterministic {
            Some(seed) => (
                Clock::manual(),
                IdSource::seeded(seed),
                StdRng::seed_from_u64(seed.wrapping_add(1)),
                self.worker_id.unwrap_or_else(|| "deterministic".to_owned()),
            ),
            None => {
                let mut rng = StdRng::from_os_rng();
                let id = self
                    .worker_id
                    .unwrap_or_else(|| format!("worker-{}-{:04x}", std::process::id(), rng.random::<u16>()));
                (Clock::System, IdSource::Random, rng, id)
            }
        };
        let metrics = Arc::new(super::metrics::Metrics::new(self.registry.names()));
        let mut hooks = Hooks::default();
        hooks.push(Arc::new(StepSpan));
        hooks.push(Arc::clone(&metrics) as Arc<dyn StepHook>);
        for hook in self.hooks {
            hooks.push(hook);
        }
        let storage = self.storage.unwrap_or_else(|| Arc::new(InMemoryStorage::new()));
        let completer = match &handle {
            Some(handle) if storage.capabilities().batches_commits => {
                let _guard = handle.enter();
                Some(super::completer::Completer::spawn(Arc::clone(&storage)))
            }
            _ => None,
        };
        let defaults: Vec<String> = self.registry.definitions().map(|def| def.queue().to_owned()).collect();
        let queues = ServedQueues::new(self.queues, defaults);
        let inner = Arc::new(Inner {
            storage,
            registry: self.registry,
            policies: self.policies,
            resources: Arc::new(self.resources),
            clock,
            worker_id,
            active: ActiveJobs::default(),
            lease_health: LeaseHealth::default(),
            metrics,
            hooks,
            stopping: Signal::new(),
            closed: Signal::new(),
            queues,
            completer,
            periodic: PeriodicJobs::new(self.periodic),
            ids,
            rng: Mutex::new(rng),
            deterministic,
            tasks: TaskTracker::new(),
            shutdown_timeout: self.shutdown_timeout,
        });
        if let Some(handle) = handle {
            let _guard = handle.enter();
            if self.workers > 0 {
                // One producer per queue; a step of any of them takes one
                // of the runtime's slots.
                let slots = Arc::new(tokio::sync::Semaphore::new(self.workers));
                for queue in inner.queues.iter() {
                    let limit = queue.limit.map(|n| n.min(self.workers));
                    let lane = Lane {
                        queue: queue.name.clone(),
                        slots: Slots::new(Arc::clone(&slots), limit),
                        workers: limit.unwrap_or(self.workers),
                        wake: Arc::clone(&queue.wake),
                    };
                    let events = inner.storage.subscribe_ready();
                    inner
                        .tasks
                        .spawn(produce(Arc::clone(&inner), lane, inner.tasks.clone(), events));
                }
            }
            tokio::spawn(heartbeat_loop(Arc::clone(&inner)));
            if !inner.periodic.is_empty() {
                tokio::spawn(periodic_loop(Runtime {
                    inner: Arc::clone(&inner),
                }));
            }
            if self.workers > 0 && inner.policies.retention.prunes() {
                tokio::spawn(super::retention::prune_loop(Arc::clone(&inner)));
            }
        }
        tracing::info!(
            worker = %inner.worker_id,
            machines = ?inner.registry.names(),
            deterministic,
            "runtime started"
        );
        Ok(Runtime { inner })
    }
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("workers", &self.workers)
            .field("machines", &self.registry.names())
            .field("policies", &self.policies)
            .field("deterministic", &self.deterministic)
            .finish()
    }
}

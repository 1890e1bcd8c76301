//! Model-based property test: random sequences of storage operations, applied
//! to each backend and to a plain reference model, give the same results.
//!
//! The model keeps jobs in a `BTreeMap` and answers a claim by sorting every
//! claimable job; it shares with the backends only the record transitions of
//! `JobRecord` (`apply`, `claim`, `release`, ...), so what is tested is each
//! backend's storing, indexing, ordering, fencing and atomicity.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proptest::prelude::*;
use runekernel_storage::{
    cancel_commit, CancelOutcome, ClaimRequest, Commit, HistoryEntry, InMemoryStorage, JobFilter, JobId, JobRecord,
    JobState, LeaseToken, NewJob, Outcome, StateChange, Storage, StorageError,
};
use serde_json::json;

const MACHINES: [&str; 2] = ["a", "b"];
const LEASE_MS: u64 = 1_000;

#[derive(Debug, Clone)]
enum Op {
    Insert {
        machine: usize,
        priority: i32,
        delay: i64,
        key: Option<u8>,
    },
    InsertBatch(Vec<(usize, i32, Option<u8>)>),
    Claim {
        machines: usize,
        limit: usize,
    },
    Finish {
        pick: usize,
        stale: bool,
    },
    Retry {
        pick: usize,
        delay: i64,
    },
    Step {
        pick: usize,
    },
    Heartbeat {
        pick: usize,
    },
    Release {
        pick: usize,
    },
    Cancel {
        pick: usize,
    },
    Advance {
        ms: i64,
    },
    Prune,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0..2usize, -1..2i32, 0..3i64, proptest::option::weighted(0.3, 0..3u8))
            .prop_map(|(machine, priority, delay, key)| Op::Insert { machine, priority, delay: delay * 500, key }),
        1 => proptest::collection::vec((0..2usize, -1..2i32, proptest::option::weighted(0.3, 0..3u8)), 1..4)
            .prop_map(Op::InsertBatch),
        3 => (1..4usize, 1..4usize).prop_map(|(machines, limit)| Op::Claim { machines, limit }),
        2 => (any::<usize>(), proptest::bool::weighted(0.2)).prop_map(|(pick, stale)| Op::Finish { pick, stale }),
        1 => (any::<usize>(), 0..3i64).prop_map(|(pick, delay)| Op::Retry { pick, delay: delay * 400 }),
        1 => any::<usize>().prop_map(|pick| Op::Step { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Heartbeat { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (0..3i64).prop_map(|ms| Op::Advance { ms: ms * 600 }),
        1 => Just(Op::Prune),
    ];
    proptest::collection::vec(op, 1..40)
}

/// The reference: every job in a map, every answer computed the obvious way.
#[derive(Default)]
struct Model {
    jobs: BTreeMap<JobId, (JobRecord, Vec<HistoryEntry>)>,
    keys: HashMap<String, JobId>,
    next_token: u64,
}

impl Model {
    fn insert(&mut self, job: &NewJob) -> Result<(JobId, bool), String> {
        if let Some(id) = job.idempotency_key.as_ref().and_then(|k| self.keys.get(k)) {
            return Ok((*id, false));
        }
        if self.jobs.contains_key(&job.id) {
            return Err("DuplicateId".into());
        }
        let record = JobRecord::from_new(job);
        let entry = job.submission_entry();
        self.jobs.insert(job.id, (record, vec![entry]));
        if let Some(key) = &job.idempotency_key {
            self.keys.insert(key.clone(), job.id);
        }
        Ok((job.id, true))
    }

    fn claim(&mut self, request: &ClaimRequest) -> Vec<JobRecord> {
        let mut ready: Vec<&JobRecord> = self
            .jobs
            .values()
            .map(|(r, _)| r)
            .filter(|r| request.machines.contains(&r.machine) && r.is_claimable(request.now))
            .collect();
        ready.sort_by_key(|r| (r.priority, r.run_at, r.id));
        let ids: Vec<JobId> = ready.iter().take(request.limit).map(|r| r.id).collect();
        ids.into_iter()
            .map(|id| {
                self.next_token += 1;
                let record = &mut self.jobs.get_mut(&id).unwrap().0;
                record.claim(
                    &request.worker,
                    LeaseToken(self.next_token),
                    request.now,
                    request.lease_ms,
                );
                record.clone()
            })
            .collect()
    }

    fn commit(&mut self, commit: &Commit) -> Result<JobRecord, String> {
        let (record, history) = self.jobs.get_mut(&commit.id).ok_or("NotFound")?;
        record.check_commit(commit).map_err(|e| kind(&e))?;
        history.push(record.apply(commit));
        Ok(record.clone())
    }

    fn leased(&mut self, id: JobId, token: LeaseToken, now: i64) -> Result<&mut JobRecord, String> {
        let (record, _) = self.jobs.get_mut(&id).ok_or("NotFound")?;
        record.check_lease(token, now).map_err(|e| kind(&e))?;
        Ok(record)
    }

    fn cancel(&mut self, id: JobId, now: i64) -> Result<String, String> {
        let (record, history) = self.jobs.get_mut(&id).ok_or("NotFound")?;
        Ok(match record.status {
            JobState::Pending => {
                let commit = cancel_commit(record, now, None);
                history.push(record.apply(&commit));
                "Cancelled".into()
            }
            JobState::Running => {
                record.request_cancel(None);
                "Requested".into()
            }
            finished => format!("AlreadyFinished({finished})"),
        })
    }

    fn prune(&mut self, before: i64) -> u64 {
        let gone: Vec<JobId> = self
            .jobs
            .values()
            .filter(|(r, _)| r.status.is_finished() && r.updated_at < before)
            .map(|(r, _)| r.id)
            .collect();
        for id in &gone {
            if let Some((r, _)) = self.jobs.remove(id) {
                if let Some(key) = r.idempotency_key {
                    self.keys.remove(&key);
                }
            }
        }
        gone.len() as u64
    }
}

fn kind(error: &StorageError) -> String {
    let text = format!("{error:?}");
    text.split([' ', '(', '{']).next().unwrap_or_default().to_owned()
}

/// A record as compared: tokens are left out (they are unique and increasing
/// in every backend, but Postgres numbers one claim batch in row order).
fn normalized(mut r: JobRecord) -> JobRecord {
    if let Some(lease) = r.lease.as_mut() {
        lease.token = LeaseToken(0);
    }
    r
}

fn new_job(n: u64, machine: usize, priority: i32, run_at: i64, key: Option<u8>) -> NewJob {
    let mut job = NewJob::new(
        JobId::from_u128(u128::from(n) + 1),
        MACHINES[machine],
        "start",
        json!({ "n": n }),
    );
    job.fingerprint = 1;
    job.priority = priority;
    job.run_at = run_at;
    job.max_attempts = 3;
    job.idempotency_key = key.map(|k| format!("key-{k}"));
    job.created_at = run_at;
    job
}

fn commit_for(r: &JobRecord, now: i64, outcome: Outcome) -> Commit {
    let token = r.lease.as_ref().map(|l| l.token);
    match token {
        Some(token) => Commit::held(r, token, "w", now, outcome),
        None => Commit::unleased(r, now, Some("w".into()), outcome),
    }
}

/// Runs one sequence against `storage` and the model, comparing as it goes.
async fn run(storage: Arc<dyn Storage>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut now: i64 = 0;
    let mut inserted = 0u64;
    // Jobs each side believes it holds: (model's record, backend's record).
    let mut held: Vec<(JobRecord, JobRecord)> = Vec::new();
    for op in ops {
        match op {
            Op::Insert {
                machine,
                priority,
                delay,
                key,
            } => {
                let job = new_job(inserted, machine, priority, now + delay, key);
                inserted += 1;
                let expected = model.insert(&job);
                let got = storage
                    .insert(job)
                    .await
                    .map(|i| (i.id, i.created))
                    .map_err(|e| kind(&e));
                prop_assert_eq!(got, expected);
            }
            Op::InsertBatch(specs) => {
                let jobs: Vec<NewJob> = specs
                    .into_iter()
                    .map(|(machine, priority, key)| {
                        inserted += 1;
                        new_job(inserted - 1, machine, priority, now, key)
                    })
                    .collect();
                let expected: Vec<(JobId, bool)> =
                    jobs.iter().map(|j| model.insert(j)).collect::<Result<_, _>>().unwrap();
                let got = storage.insert_batch(jobs).await.unwrap();
                prop_assert_eq!(got.into_iter().map(|i| (i.id, i.created)).collect::<Vec<_>>(), expected);
            }
            Op::Claim { machines, limit } => {
                let request = ClaimRequest {
                    worker: "w".into(),
                    machines: MACHINES
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| machines & (1 << i) != 0)
                        .map(|(_, m)| (*m).to_owned())
                        .collect(),
                    queue: runekernel_storage::DEFAULT_QUEUE.into(),
                    limit,
                    now,
                    lease_ms: LEASE_MS,
                };
                let expected = model.claim(&request);
                let got = storage.claim(request).await.unwrap();
                prop_assert_eq!(
                    got.iter().cloned().map(normalized).collect::<Vec<_>>(),
                    expected.iter().cloned().map(normalized).collect::<Vec<_>>()
                );
                held.retain(|(m, _)| !expected.iter().any(|e| e.id == m.id));
                held.extend(expected.into_iter().zip(got));
            }
            Op::Finish { pick, .. } | Op::Retry { pick, .. } | Op::Step { pick } if !held.is_empty() => {
                let i = pick % held.len();
                let (m, b) = held[i].clone();
                let make = |r: &JobRecord| {
                    let outcome = match &op {
                        Op::Retry { delay, .. } => Outcome::Retrying {
                            run_at: now + delay,
                            error: "retry".into(),
                        },
                        Op::Step { .. } => Outcome::Continued {
                            to: StateChange {
                                state: "middle".into(),
                                payload: json!([1, 2]),
                                fingerprint: 2,
                            },
                            lease_until: now + LEASE_MS as i64,
                        },
                        _ => Outcome::Completed {
                            to: StateChange {
                                state: "done".into(),
                                payload: json!(null),
                                fingerprint: 1,
                            },
                        },
                    };
                    let mut c = commit_for(r, now, outcome);
                    if let Op::Finish { stale: true, .. } = &op {
                        c.expected_version += 1;
                    }
                    c
                };
                let expected = model.commit(&make(&m));
                let got = storage.commit(make(&b)).await.map_err(|e| kind(&e));
                prop_assert_eq!(got.clone().map(normalized), expected.clone().map(normalized));
                match (expected, got) {
                    (Ok(m), Ok(b)) if m.status == JobState::Running => held[i] = (m, b),
                    (Ok(_), _) => {
                        held.remove(i);
                    }
                    _ => {}
                }
            }
            Op::Heartbeat { pick } if !held.is_empty() => {
                let (m, b) = held[pick % held.len()].clone();
                let expected = model
                    .leased(m.id, m.lease.as_ref().unwrap().token, now)
                    .map(|r| r.extend_lease(now, LEASE_MS));
                let got = storage
                    .heartbeat(b.id, b.lease.as_ref().unwrap().token, now, LEASE_MS)
                    .await
                    .map_err(|e| kind(&e));
                prop_assert_eq!(got, expected);
            }
            Op::Release { pick } if !held.is_empty() => {
                let (m, b) = held.remove(pick % held.len());
                let expected = model
                    .leased(m.id, m.lease.as_ref().unwrap().token, now)
                    .map(|r| r.release(now));
                let got = storage
                    .release(b.id, b.lease.as_ref().unwrap().token, now)
                    .await
                    .map_err(|e| kind(&e));
                prop_assert_eq!(got, expected);
            }
            Op::Cancel { pick } if inserted > 0 => {
                let id = JobId::from_u128(u128::from(pick as u64 % inserted) + 1);
                let expected = model.cancel(id, now);
                let got = storage
                    .cancel(id, now, None)
                    .await
                    .map_err(|e| kind(&e))
                    .map(|o| match o {
                        CancelOutcome::Cancelled(_) => "Cancelled".to_owned(),
                        CancelOutcome::Requested => "Requested".to_owned(),
                        CancelOutcome::AlreadyFinished(s) => format!("AlreadyFinished({s})"),
                    });
                prop_assert_eq!(got, expected);
            }
            Op::Advance { ms } => now += ms,
            Op::Prune => {
                let expected = model.prune(now);
                prop_assert_eq!(storage.prune(now).await.unwrap(), expected);
            }
            _ => {}
        }
    }
    // The whole final state: every job and every history.
    let all = storage.list(&JobFilter::default(), None, 10_000).await.unwrap();
    let expected: Vec<JobRecord> = model.jobs.values().map(|(r, _)| normalized(r.clone())).collect();
    prop_assert_eq!(all.jobs.into_iter().map(normalized).collect::<Vec<_>>(), expected);
    for (id, (_, history)) in &model.jobs {
        prop_assert_eq!(&storage.history(*id).await.unwrap(), history);
    }
    Ok(())
}

fn check_backend<S: Storage>(cases: u32, make: impl Fn() -> S) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in ops())| {
        let storage: Arc<dyn Storage> = Arc::new(make());
        runtime.block_on(run(storage, ops))?;
    });
}

#[test]
fn in_memory_matches_the_model() {
    check_backend(256, InMemoryStorage::new);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_matches_the_model() {
    check_backend(96, || runekernel_storage::SqliteStorage::open_in_memory().unwrap());
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_matches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    check_backend(64, || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runekernel_storage::RocksDbStorage::open(dir.path().join(n.to_string())).unwrap()
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_matches_the_model() {
    use runekernel_storage::testing::postgres::{database_url, TestSchemas};
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    check_backend(24, || {
        let schema = schemas.fresh("rk_model");
        let options = runekernel_storage::PostgresOptions::default().schema(schema);
        // Connect on a runtime of its own: the storage's listener task lives there.
        runtime
            .block_on(runekernel_storage::PostgresStorage::connect_with(&url, options))
            .unwrap()
    });
}

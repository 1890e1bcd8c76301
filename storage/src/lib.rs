//! The storage layer of [RuneKernel](https://docs.rs/runekernel): the
//! persisted job model, the [`Storage`] trait, and its backends.
//!
//! | backend | feature | what it is |
//! |---|---|---|
//! | [`InMemoryStorage`] | always | the default; nothing survives the process |
//! | `SqliteStorage` | `sqlite` (default) | one file, WAL, group commit, durable by default |
//! | `PostgresStorage` | `postgres` | shared by many processes on many machines |
//! | `RocksDbStorage` | `rocksdb` | an embedded LSM store with column families and atomic write batches |
//!
//! A custom backend implements [`Storage`] and runs the conformance suite,
//! [`testing::conformance`] (feature `testing`), that every built-in backend
//! runs.
//!
//! ```
//! use runekernel_storage::{InMemoryStorage, JobId, NewJob, Storage, JobState};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let storage = InMemoryStorage::new();
//! let id = JobId::new();
//! storage.insert(NewJob::new(id, "order", "Created", serde_json::json!({"sku": "rune-1"}))).await?;
//! let job = storage.get(id).await?.expect("just inserted");
//! assert_eq!(job.status, JobState::Pending);
//! assert_eq!(storage.history(id).await?.len(), 1);
//! # Ok::<(), runekernel_storage::StorageError>(())
//! # }).unwrap();
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod capabilities;
mod commit;
mod duty;
mod error;
mod events;
mod id;
mod job_state;
mod memory;
mod model;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod outcome_sql;
mod payload;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "rocksdb")]
mod rocks;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "postgres")]
mod sqlx;
mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use capabilities::Capabilities;
pub use commit::{AttemptsAfter, Commit, Committed, Outcome, StateChange};
pub use error::StorageError;
pub use events::{EventBus, StorageEvent};
pub use id::{JobId, ParseJobIdError};
pub use job_state::{JobState, ParseJobStateError};
pub use memory::InMemoryStorage;
pub use model::{
    cancel_commit, CancelOutcome, ClaimRequest, CountRow, DeleteOutcome, Heartbeat, HistoryEntry, Inserted, JobFilter,
    JobNames, JobPage, JobRecord, Lease, LeaseToken, ListOrder, Millis, NewJob, DEFAULT_QUEUE,
};
pub use payload::{check_payload_depth, PayloadTooDeep, MAX_PAYLOAD_DEPTH};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStorage};
#[cfg(feature = "rocksdb")]
pub use rocks::{RocksDbOptions, RocksDbStorage};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStorage, Synchronous};
pub use storage::Storage;

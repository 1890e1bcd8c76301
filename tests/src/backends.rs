//! The storage backends every runtime scenario runs on.

use std::sync::Arc;

use runekernel::storage::testing::postgres::{database_url, TestSchemas};
use runekernel::storage::{InMemoryStorage, PostgresOptions, PostgresStorage, SqliteStorage, Storage};

/// A storage for one test, and what must live as long as it (a temporary
/// directory, a schema to drop).
pub struct TestStorage {
    /// The storage.
    pub storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
    _schemas: Option<TestSchemas>,
}

impl TestStorage {
    /// An in-memory store.
    pub fn memory() -> Self {
        TestStorage {
            storage: Arc::new(InMemoryStorage::new()),
            _dir: None,
            _schemas: None,
        }
    }

    /// A SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(dir.path().join("jobs.db")).expect("open SQLite");
        TestStorage {
            storage: Arc::new(storage),
            _dir: Some(dir),
            _schemas: None,
        }
    }

    /// A RocksDB directory in a temporary directory.
    #[cfg(feature = "rocksdb")]
    pub fn rocksdb() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = runekernel::storage::RocksDbStorage::open(dir.path().join("rocks")).expect("open RocksDB");
        TestStorage {
            storage: Arc::new(storage),
            _dir: Some(dir),
            _schemas: None,
        }
    }

    /// A fresh schema in the test Postgres, or `None` (with a notice) when
    /// `DATABASE_URL` is unset outside CI.
    pub async fn postgres() -> Option<Self> {
        let url = database_url()?;
        let schemas = TestSchemas::new(&url);
        let options = PostgresOptions::default().schema(schemas.fresh("rk_runtime"));
        let storage = PostgresStorage::connect_with(&url, options)
            .await
            .expect("connect to Postgres");
        Some(TestStorage {
            storage: Arc::new(storage),
            _dir: None,
            _schemas: Some(schemas),
        })
    }
}

/// Runs each named scenario, an `async fn(TestStorage)`, as one test per
/// backend: `memory::name`, `sqlite::name`, `postgres::name`, and with the
/// `rocksdb` feature `rocksdb::name`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::backends::TestStorage::memory()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::backends::TestStorage::sqlite()).await;
                }
            )*
        }
        #[cfg(feature = "rocksdb")]
        mod rocksdb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::backends::TestStorage::rocksdb()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(storage) = $crate::backends::TestStorage::postgres().await {
                        super::$name(storage).await;
                    }
                }
            )*
        }
    };
}

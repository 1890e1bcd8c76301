//! Where a scenario's jobs live, named by a spec that a worker process can
//! be given on its command line: `sqlite:PATH`, `postgres:URL#SCHEMA`, or
//! `rocksdb:PATH` (feature `rocksdb`).

use std::sync::Arc;

use runekernel::storage::{PostgresOptions, PostgresStorage, SqliteStorage, Storage};

use crate::Error;

/// Opens the store that `spec` names.
///
/// # Errors
/// An unknown spec, or a store that cannot be opened.
pub async fn open(spec: &str) -> Result<Arc<dyn Storage>, Error> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Arc::new(SqliteStorage::open(path)?));
    }
    #[cfg(feature = "rocksdb")]
    if let Some(path) = spec.strip_prefix("rocksdb:") {
        // One process at a time holds a RocksDB directory: a worker started
        // right after the previous holder (the submitting process, or a
        // killed worker) waits for its lock to be released.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match runekernel::storage::RocksDbStorage::open(path) {
                Ok(storage) => return Ok(Arc::new(storage)),
                Err(error) if error.to_string().contains("LOCK") && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    if let Some(rest) = spec.strip_prefix("postgres:") {
        let (url, schema) = rest
            .rsplit_once('#')
            .ok_or_else(|| Error::Usage(format!("`{spec}`: write postgres:URL#SCHEMA")))?;
        let options = PostgresOptions::default().schema(schema);
        return Ok(Arc::new(PostgresStorage::connect_with(url, options).await?));
    }
    Err(Error::Usage(format!("unknown storage `{spec}`")))
}

/// The backend's name in a spec.
pub fn backend(spec: &str) -> &str {
    spec.split_once(':').map_or(spec, |(backend, _)| backend)
}

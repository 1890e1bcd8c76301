//! The RocksDB backend against the conformance suite, plus reopening.

use std::sync::atomic::{AtomicUsize, Ordering};

use runekernel_storage::testing::{self, new_job};
use runekernel_storage::{RocksDbStorage, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rocksdb_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let counter = AtomicUsize::new(0);
    testing::conformance(|| {
        let path = dir
            .path()
            .join(format!("db-{}", counter.fetch_add(1, Ordering::Relaxed)));
        async move { RocksDbStorage::open(path).unwrap() }
    })
    .await;
}

#[tokio::test]
async fn jobs_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let job = new_job("m", 1);
    {
        let storage = RocksDbStorage::open(dir.path()).unwrap();
        storage.insert(job.clone()).await.unwrap();
    }
    let storage = RocksDbStorage::open(dir.path()).unwrap();
    assert_eq!(storage.get(job.id).await.unwrap().unwrap().payload, job.payload);
    assert_eq!(storage.history(job.id).await.unwrap().len(), 1);
}

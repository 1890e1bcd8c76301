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

/// A tmpfs of `size` at `at`, unmounted (lazily) when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_owned()))
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// RocksDB refuses every write after one failed on I/O until it is opened
/// again; the store must work again once the disk has room, with what it
/// stored before. Needs the right to mount a tmpfs (root): skipped with a
/// notice otherwise, except under `CI=true`.
#[tokio::test]
async fn a_full_disk_that_gets_room_again_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "8m") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must mount a tmpfs"
        );
        eprintln!("skipping: this process may not mount a tmpfs");
        return;
    };
    let storage = RocksDbStorage::open(disk.0.join("db")).unwrap();
    let mut stored = Vec::new();
    let refusal = loop {
        let mut job = new_job("m", stored.len() as u64);
        job.payload = serde_json::json!({ "pad": "x".repeat(4096) });
        match storage.insert(job.clone()).await {
            Ok(_) => stored.push(job.id),
            Err(error) => break error.to_string(),
        }
        assert!(stored.len() < 100_000, "an 8 MiB disk took 100 000 jobs of 4 KiB");
    };
    assert!(refusal.contains("No space left"), "{refusal}");
    assert!(!stored.is_empty());
    // Still full: refused again, with the same clear error.
    assert!(storage.insert(new_job("m", 0)).await.is_err());
    disk.resize("64m");
    let after = new_job("m", 1);
    storage
        .insert(after.clone())
        .await
        .expect("written once the disk has room");
    for id in stored.iter().chain([&after.id]) {
        assert!(storage.get(*id).await.unwrap().is_some(), "job {id} was kept");
    }
}

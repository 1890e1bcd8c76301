//! A full disk: the store (SQLite, or RocksDB with the `rocksdb` feature)
//! lives on a small tmpfs, jobs are submitted until the disk refuses them,
//! then the disk is given room again. Every refusal must be a clear error, what was stored before must
//! stay intact, and the same store must work again once there is room. The
//! jobs run in this process, whose commits the full disk refuses.
//! Needs the right to mount (root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use runekernel::prelude::*;

use crate::audit::audit;
use crate::machine::{Chaos, Steps};
use crate::scenarios::Outcome;
use crate::{store, Error};

/// A tmpfs mounted for the scenario, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, size: &str) -> Result<Self, Error> {
        std::fs::create_dir_all(at)?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at))?;
        Ok(Mount(at.to_owned()))
    }

    /// Gives the disk `size` of room.
    fn resize(&self, size: &str) -> Result<(), Error> {
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazily: the store's writer thread may still hold its files for a
        // moment; the mount is detached now and freed once they close.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(command: &mut Command) -> Result<(), Error> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Scenario(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Whether this process may mount a tmpfs (tried once, on a scratch
/// directory under `dir`).
pub fn can_mount(dir: &Path) -> bool {
    Mount::new(&dir.join("mount-check"), "64k").is_ok()
}

/// Waits until every stored job is finished.
async fn drained(rt: &Runtime) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        match rt.counts().await {
            Ok(counts) if counts.iter().all(|c| c.status.is_finished()) => return Ok(()),
            _ if started.elapsed() > Duration::from_secs(300) => {
                return Err(Error::Scenario("jobs did not finish within 300 s".into()))
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Fills a `backend` store (`sqlite` or `rocksdb`) on a tmpfs of `size`
/// until it refuses a submit, then gives it room and runs everything to
/// the end.
pub async fn disk_full(dir: &Path, backend: &str, size: &str) -> Result<Outcome, Error> {
    let mount = Mount::new(&dir.join(format!("full-{backend}")), size)?;
    let spec = format!("{backend}:{}", mount.0.join("jobs").display());
    let runs = dir.join(format!("runs-disk-full-{backend}.log"));
    let storage = store::open(&spec).await?;
    let rt = Runtime::builder()
        .shared_storage(storage.clone())
        .register(Chaos::handler(Steps {
            step: Duration::ZERO,
            runs: Some(runs.clone()),
        }))
        .workers(8)
        .lease(crate::worker::LEASE)
        .heartbeat(crate::worker::HEARTBEAT)
        .build()
        .await?;
    let mut stored = 0u64;
    let refusal = loop {
        let batch = (stored..stored + 200).map(|n| Chaos::Start { n, fail_first: 0 });
        match rt.submit_many(batch).await {
            Ok(ids) => stored += ids.len() as u64,
            Err(error) => break error.to_string(),
        }
        if stored > 1_000_000 {
            return Err(Error::Scenario(format!("a {size} disk took a million jobs")));
        }
    };
    let full = Instant::now();
    // While the disk is full, commits fail too; the jobs they were for
    // come back when their leases run out.
    tokio::time::sleep(crate::worker::LEASE).await;
    mount.resize("256m")?;
    let more = rt
        .submit_many((0..100).map(|n| Chaos::Start { n, fail_first: 0 }))
        .await?;
    stored += more.len() as u64;
    drained(&rt).await?;
    let recovery = full.elapsed();
    rt.shutdown().await?;
    drop(rt);
    let audit = audit(storage, stored, &runs, &[std::process::id()]).await?;
    let short: String = refusal.chars().take(80).collect();
    Ok(Outcome {
        scenario: "disk full",
        backend: backend.to_owned(),
        audit,
        recovery,
        detail: format!("refused with: {short}"),
    })
}

//! Worker processes of a scenario: started as this binary's `worker`
//! command, killed with SIGKILL, frozen with SIGSTOP and resumed.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::Error;

/// How long each step of a worker's jobs takes.
pub const STEP_MS: u64 = 30;

/// A worker process running jobs on `spec`, logging its handler runs to
/// `runs`.
pub fn start(spec: &str, runs: &Path) -> Result<Child, Error> {
    start_with(spec, runs, &[])
}

/// [`start`] with more environment variables.
pub fn start_with(spec: &str, runs: &Path, env: &[(&str, &OsStr)]) -> Result<Child, Error> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["worker", spec])
        .env("CHAOS_STEP_MS", STEP_MS.to_string())
        .env("CHAOS_RUNS", runs)
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .spawn()?)
}

/// Debian's libfaketime, which `faketime` preloads.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A worker whose wall clock is offset by what the file `offset` says
/// (`+0.4s`, `-0.4s`, as `faketime -f` takes), read again at every clock
/// reading, so writing the file steps the clock. Its monotonic clock is
/// left alone (timers run as usual).
pub fn start_skewed(spec: &str, runs: &Path, offset: &Path) -> Result<Child, Error> {
    start_with(
        spec,
        runs,
        &[
            ("LD_PRELOAD", OsStr::new(LIBFAKETIME)),
            ("FAKETIME_TIMESTAMP_FILE", offset.as_os_str()),
            ("FAKETIME_NO_CACHE", OsStr::new("1")),
            ("FAKETIME_DONT_FAKE_MONOTONIC", OsStr::new("1")),
        ],
    )
}

/// SIGKILL, then reap.
pub fn kill(mut child: Child) -> Result<(), Error> {
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Sends `signal` (`STOP`, `CONT`) to the process.
pub fn signal(child: &Child, signal: &str) -> Result<(), Error> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Scenario(format!(
            "kill -{signal} {} failed: {status}",
            child.id()
        )))
    }
}

/// Waits for the process to exit by itself, successfully, within `within`.
pub fn finish(mut child: Child, within: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(Error::Scenario(format!("a worker exited with {status}")))
            };
        }
        if Instant::now() > deadline {
            let _ = kill(child);
            return Err(Error::Scenario(format!("a worker did not finish within {within:?}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! The admin API fuzzed from its own OpenAPI document by schemathesis
//! (from PyPI), while jobs run: no response may be a 5xx, none may hang,
//! and every response must match the document.

use std::time::Duration;

use runekernel::admin::{self, AdminConfig};
use runekernel::prelude::*;

use crate::machine::{Chaos, Steps};
use crate::{store, Error};

const TOKEN: &str = "chaos-suite-fuzz-token";

/// What schemathesis found.
#[derive(Debug, Clone)]
pub struct Fuzz {
    /// Test cases it generated and sent.
    pub cases: u64,
    /// Failures it reported (5xx, hangs, responses the document does not
    /// allow).
    pub failures: u64,
    /// Its summary line.
    pub summary: String,
}

/// Whether schemathesis is installed.
pub fn available() -> bool {
    std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Runs schemathesis with up to `examples` cases per operation against an
/// admin API over the store `spec`, with a few jobs in it.
pub async fn admin_fuzz(spec: &str, examples: u32) -> Result<Fuzz, Error> {
    let rt = Runtime::builder()
        .shared_storage(store::open(spec).await?)
        .register(Chaos::handler(Steps {
            step: Duration::from_millis(5),
            runs: None,
        }))
        .build()
        .await?;
    rt.submit_many((0..50).map(|n| Chaos::Start { n, fail_first: 1 }))
        .await?;
    let app = admin::router(rt.clone(), AdminConfig::new(TOKEN)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    // Positive data acceptance is left out: a state valid by the document
    // (any one-key object) is refused when the machine has no such state,
    // which no static document can say. The event stream is left out too:
    // its answer never ends (tests/tests/admin.rs covers it).
    let output = tokio::process::Command::new("schemathesis")
        .args(["run", &format!("{base}/openapi.json"), "--no-color", "--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance",
            "--exclude-path",
            "/events",
            "--request-timeout",
            "10",
        ])
        .args(["--max-examples", &examples.to_string(), "--seed", "1"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .output()
        .await?;
    server.abort();
    rt.shutdown().await?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "1226 generated, 7 found 7 unique failures, 16 skipped", or
    // "1226 generated, 1210 passed, 16 skipped".
    let summary = text
        .lines()
        .map(str::trim)
        .find(|line| {
            let mut words = line.split_whitespace();
            let counted = words.next().is_some_and(|n| n.parse::<u64>().is_ok());
            counted && words.next().is_some_and(|w| w.starts_with("generated"))
        })
        .unwrap_or_default()
        .to_owned();
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = summary.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        words
            .windows(2)
            .find(|pair| pair[1] == word)
            .and_then(|pair| pair[0].parse().ok())
            .unwrap_or(0)
    };
    let cases = number_before("generated");
    let failures = if output.status.success() {
        0
    } else {
        number_before("unique").max(1)
    };
    if !output.status.success() {
        eprintln!("{text}");
    }
    Ok(Fuzz {
        cases,
        failures,
        summary,
    })
}

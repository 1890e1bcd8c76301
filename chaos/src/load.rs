//! The admin API under load from loopback clients while jobs run.

use std::time::{Duration, Instant};

use runekernel::admin::{self, AdminConfig};
use runekernel::prelude::*;

use crate::machine::{Chaos, Steps};
use crate::{store, Error};

const TOKEN: &str = "chaos-suite-admin-token";

/// What the load measured.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered.
    pub requests: u64,
    /// Responses that were not 2xx, and requests that failed.
    pub errors: u64,
    /// How long the load ran.
    pub duration: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// `clients` clients send requests for `duration` to an admin API over the
/// store `spec` while its runtime runs a steady trickle of jobs.
pub async fn admin_load(spec: &str, clients: usize, duration: Duration) -> Result<Load, Error> {
    let rt = Runtime::builder()
        .shared_storage(store::open(spec).await?)
        .register(Chaos::handler(Steps {
            step: Duration::from_millis(5),
            runs: None,
        }))
        .build()
        .await?;
    let app = admin::router(rt.clone(), AdminConfig::new(TOKEN)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let deadline = Instant::now() + duration;
    let trickle = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                let batch = (n..n + 20).map(|n| Chaos::Start { n, fail_first: 0 });
                if rt.submit_many(batch).await.is_err() {
                    break;
                }
                n += 20;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let client = reqwest::Client::new();
    let paths = [
        "/jobs?limit=20",
        "/machines/chaos",
        "/machines",
        "/metrics",
        "/jobs?status=completed&limit=5",
    ];
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut i = c;
            while Instant::now() < deadline {
                let started = Instant::now();
                let sent = client
                    .get(format!("{base}{}", paths[i % paths.len()]))
                    .bearer_auth(TOKEN)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                    }
                    _ => errors += 1,
                }
                latencies.push(started.elapsed());
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (mine, failed) = task.await.map_err(|e| Error::Scenario(e.to_string()))?;
        latencies.extend(mine);
        errors += failed;
    }
    let ran = started.elapsed();
    let _ = trickle.await;
    server.abort();
    rt.shutdown().await?;
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).copied().unwrap_or_default()
    };
    Ok(Load {
        clients,
        requests: latencies.len() as u64,
        errors,
        duration: ran,
        p50: at(0.5),
        p99: at(0.99),
    })
}

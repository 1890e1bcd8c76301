//! Orders on SQLite: a flaky payment gateway (retries), a guarded refund,
//! and a cancellation. Prints each job's history.
//!
//! `cargo run -p runekernel-examples --bin order_pipeline [DB]`

use std::time::Duration;

use runekernel::prelude::*;
use runekernel::storage::SqliteStorage;
use runekernel::Backoff;
use runekernel_examples::{Order, Shop};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile_dir()?;
    let path = std::env::args().nth(1).unwrap_or_else(|| format!("{dir}/orders.db"));
    let rt = Runtime::builder()
        .storage(SqliteStorage::open(&path)?)
        .register(Order::handler(Shop::flaky(2)))
        .workers(4)
        .backoff(Backoff {
            base: Duration::from_millis(100),
            ..Backoff::default()
        })
        .build()
        .await?;

    let shipped = rt
        .submit(Order::Created {
            sku: "rune-1".into(),
            qty: 2,
        })
        .await?;
    let retried = rt
        .submit(Order::Created {
            sku: "rune-2".into(),
            qty: 1,
        })
        .await?;
    let refunded = rt
        .submit(Order::Created {
            sku: "tome".into(),
            qty: 11,
        })
        .await?;
    let unknown = rt
        .submit(Order::Created {
            sku: "scroll".into(),
            qty: 1,
        })
        .await?;
    let later = SubmitOptions {
        delay: Some(Duration::from_secs(3600)),
        ..SubmitOptions::default()
    };
    let cancelled = rt
        .submit_with(
            Order::Created {
                sku: "rune-1".into(),
                qty: 1,
            },
            later,
        )
        .await?;
    rt.cancel(cancelled).await?;

    for id in [shipped, retried, refunded, unknown, cancelled] {
        let job = rt.wait::<Order>(id).await?;
        println!("job {id}: {:?} ({})", job.state, job.status);
        for entry in rt.history(id).await? {
            let from = entry.from.as_deref().unwrap_or("-");
            let error = entry.error.map(|e| format!(" error: {e}")).unwrap_or_default();
            println!("  #{} {from} -> {} [{}]{error}", entry.seq, entry.to, entry.status);
        }
        rt.verify(id).await?;
    }
    rt.shutdown().await?;
    println!("database: {path}");
    Ok(())
}

/// A directory for the database that outlives the process, so it can be
/// inspected afterwards.
fn tempfile_dir() -> std::io::Result<String> {
    let dir = std::env::temp_dir().join("runekernel-examples");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.display().to_string())
}

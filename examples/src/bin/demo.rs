//! The RuneKernel demo: a runtime running `Order` and `Invoice` jobs on
//! SQLite (or Postgres), a trickle of demo jobs, the admin API and the
//! visualizer (`/ui`).
//!
//! ```text
//! cargo run --release -p runekernel-examples --bin demo -- --help
//! ```
//! The admin token comes from `--token` or `RUNEKERNEL_ADMIN_TOKEN`; when
//! neither is set the demo makes one up and prints it, and then only
//! listens on a loopback address. Ctrl-C or SIGTERM stops it gracefully.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use rand::Rng;
use runekernel::admin::{self, AdminConfig};
use runekernel::prelude::*;
use runekernel::storage::{PostgresStorage, SqliteStorage, Storage};
use runekernel_examples::{Billing, Invoice, Order, Shop};
use tokio_util::sync::CancellationToken;

/// The RuneKernel demo: `order` and `invoice` jobs on embedded SQLite (or
/// Postgres), the admin API and the visualizer.
#[derive(Debug, Parser)]
#[command(version)]
struct Options {
    /// The SQLite database file.
    #[arg(long, default_value = "./runekernel-demo.db", conflicts_with = "database_url")]
    db: String,
    /// Run on Postgres instead, e.g. postgres://postgres@127.0.0.1:5432/test.
    #[arg(long)]
    database_url: Option<String>,
    /// Where the admin API and the visualizer listen.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Submit no demo jobs.
    #[arg(long)]
    no_seed: bool,
    /// The admin token (at least 16 bytes). Generated when unset, which
    /// only a loopback --listen address allows.
    #[arg(long, env = "RUNEKERNEL_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A second token that may only read (every GET; changes are refused).
    #[arg(long, env = "RUNEKERNEL_READ_ONLY_TOKEN", hide_env_values = true)]
    read_only_token: Option<String>,
    /// Seconds between the log's summary lines (0: none).
    #[arg(long, default_value_t = 10)]
    summary_every: u64,
}

/// Submits a demo order or invoice every second until stopped.
async fn seed(rt: Runtime, stop: CancellationToken) {
    let skus = ["rune-1", "rune-2", "tome", "scroll"];
    let customers = ["Astrid", "Bjorn", "Freya", "Leif", "Sigrid"];
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        n += 1;
        let (sku, qty, customer, amount) = {
            let mut rng = rand::rng();
            (
                skus[rng.random_range(0..skus.len())],
                rng.random_range(0..13),
                customers[rng.random_range(0..customers.len())],
                rng.random_range(1_000..90_000),
            )
        };
        let submitted = if n.is_multiple_of(3) {
            rt.submit(Invoice::Drafted {
                customer: customer.to_owned(),
                amount_cents: amount,
            })
            .await
        } else {
            rt.submit(Order::Created {
                sku: sku.to_owned(),
                qty,
            })
            .await
        };
        if let Err(error) = submitted {
            eprintln!("could not submit a demo job: {error}");
        }
    }
}

/// Logs, every `every`, how many steps ran, failed their job or will be
/// retried since the last line, so a person sees jobs complete and not only
/// the failures.
async fn summarize(rt: Runtime, every: Duration, stop: CancellationToken) {
    let totals = |rt: &Runtime| {
        rt.metrics()
            .iter()
            .fold((0, 0, 0), |(s, f, r), m| (s + m.steps, f + m.failures, r + m.retries))
    };
    let mut last = totals(&rt);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = totals(&rt);
        tracing::info!(
            "last {} s: steps run {}, jobs failed {}, steps to retry {}",
            every.as_secs(),
            now.0 - last.0,
            now.1 - last.1,
            now.2 - last.2
        );
        last = now;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    tracing_subscriber::fmt()
        .with_ansi(std::io::stdout().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,runekernel=info".into()),
        )
        .init();
    let (token, generated) = match options.token.clone().filter(|t| !t.trim().is_empty()) {
        Some(token) => (token, false),
        None => {
            if !options.listen.ip().is_loopback() {
                eprintln!(
                    "refusing to listen on {} without a token: a generated one is only for loopback addresses (--token or RUNEKERNEL_ADMIN_TOKEN)",
                    options.listen
                );
                std::process::exit(2);
            }
            let bytes: [u8; 16] = rand::rng().random();
            (bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(), true)
        }
    };

    let (storage, database): (std::sync::Arc<dyn Storage>, String) = match &options.database_url {
        Some(url) => (
            std::sync::Arc::new(PostgresStorage::connect(url).await?),
            "Postgres".to_owned(),
        ),
        None => (
            std::sync::Arc::new(SqliteStorage::open(&options.db)?),
            format!("SQLite ({})", options.db),
        ),
    };
    let rt = Runtime::builder()
        .shared_storage(storage)
        .register(Order::handler(Shop::flaky(5)))
        .register(Invoice::handler(Billing))
        .workers(8)
        .build()
        .await?;
    let mut config = AdminConfig::new(token.clone())?;
    if let Some(read_only) = options.read_only_token.clone() {
        config = config.read_only_token(read_only)?;
    }
    let app = admin::router(rt.clone(), config);
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let address = listener.local_addr()?;
    // A generated token goes in the visualizer's fragment, which the
    // browser never sends to the server; a chosen one is typed into the
    // page, and not printed.
    let (fragment, export) = if generated {
        (format!("#token={token}"), format!("export TOKEN={token}"))
    } else {
        (
            String::new(),
            "export TOKEN=\"$RUNEKERNEL_ADMIN_TOKEN\"   # the token you chose".to_owned(),
        )
    };
    println!(
        "RuneKernel demo on {database}\n\
         \x20 admin API:  http://{address}\n\
         \x20 visualizer: http://{address}/ui{fragment}\n\
         \x20 {export}\n\
         \x20 curl -H \"Authorization: Bearer $TOKEN\" http://{address}/machines\n\
         Some orders fail on purpose, to show both kinds of failure: the payment\n\
         gateway times out on the first charge and every fifth after it (those\n\
         steps are retried and go on), and orders for the unknown SKU `scroll`\n\
         fail for good. Ctrl-C or SIGTERM stops it."
    );

    let stop = CancellationToken::new();
    let seeder = (!options.no_seed).then(|| tokio::spawn(seed(rt.clone(), stop.clone())));
    if options.summary_every > 0 {
        tokio::spawn(summarize(
            rt.clone(),
            Duration::from_secs(options.summary_every),
            stop.clone(),
        ));
    }
    // The runtime stops before the server drains its connections: an open
    // UI's event stream ends only when the runtime does.
    let shutdown = {
        let rt = rt.clone();
        async move {
            runekernel::termination().await;
            stop.cancel();
            if let Some(seeder) = seeder {
                let _ = seeder.await;
            }
            if let Err(error) = rt.shutdown().await {
                eprintln!("the runtime did not stop cleanly: {error}");
            }
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    println!("stopped");
    Ok(())
}

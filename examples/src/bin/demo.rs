//! The RuneKernel demo: a runtime on SQLite running `Order` and `Invoice`
//! jobs, a trickle of demo jobs, the admin API and the visualizer (`/ui`).
//!
//! ```text
//! cargo run --release -p runekernel-examples --bin demo -- [--db PATH] [--listen ADDR] [--no-seed]
//! ```
//! The admin token comes from `RUNEKERNEL_ADMIN_TOKEN`; when it is unset the
//! demo makes one up and prints it, and then only listens on a loopback
//! address. Ctrl-C stops it gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use runekernel::admin::{self, AdminConfig};
use runekernel::prelude::*;
use runekernel::storage::SqliteStorage;
use runekernel_examples::{Billing, Invoice, Order, Shop};
use tokio_util::sync::CancellationToken;

struct Options {
    db: String,
    listen: SocketAddr,
    seed: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        db: "./runekernel-demo.db".to_owned(),
        listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
        seed: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => options.db = args.next().ok_or("--db needs a path")?,
            "--listen" => {
                let addr = args.next().ok_or("--listen needs an address such as 127.0.0.1:7700")?;
                options.listen = addr.parse().map_err(|e| format!("--listen {addr}: {e}"))?;
            }
            "--no-seed" => options.seed = false,
            "--help" | "-h" => {
                return Err("usage: demo [--db PATH] [--listen ADDR] [--no-seed]\n\
                            the admin token is RUNEKERNEL_ADMIN_TOKEN, or a generated one"
                    .to_owned())
            }
            other => return Err(format!("unknown argument `{other}`; try --help")),
        }
    }
    Ok(options)
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
        let submitted = if n % 3 == 0 {
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,runekernel=info".into()),
        )
        .init();
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let (token, generated) = match std::env::var("RUNEKERNEL_ADMIN_TOKEN") {
        Ok(token) if !token.trim().is_empty() => (token, false),
        _ => {
            if !options.listen.ip().is_loopback() {
                eprintln!(
                    "refusing to listen on {} without RUNEKERNEL_ADMIN_TOKEN: a generated token is only for loopback addresses",
                    options.listen
                );
                std::process::exit(2);
            }
            let bytes: [u8; 16] = rand::rng().random();
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            println!("admin token (set RUNEKERNEL_ADMIN_TOKEN to choose one): {token}");
            (token, true)
        }
    };

    let rt = Runtime::builder()
        .storage(SqliteStorage::open(&options.db)?)
        .register(Order::handler(Shop::flaky(5)))
        .register(Invoice::handler(Billing))
        .workers(8)
        .build()
        .await?;
    let app = admin::router(rt.clone(), AdminConfig::new(token.clone())?);
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    println!(
        "RuneKernel demo: admin API on http://{} (database {})",
        listener.local_addr()?,
        options.db
    );
    println!(
        "try: curl -H \"Authorization: Bearer $TOKEN\" http://{}/machines",
        listener.local_addr()?
    );
    // A generated token goes in the fragment, which the browser never
    // sends to the server; a chosen one is typed into the page.
    let fragment = if generated {
        format!("#token={token}")
    } else {
        String::new()
    };
    println!("visualizer: http://{}/ui{fragment}", listener.local_addr()?);

    let stop = CancellationToken::new();
    let seeder = options.seed.then(|| tokio::spawn(seed(rt.clone(), stop.clone())));
    // The runtime stops before the server drains its connections: an open
    // UI's event stream ends only when the runtime does.
    let shutdown = {
        let rt = rt.clone();
        async move {
            let _ = tokio::signal::ctrl_c().await;
            println!("stopping...");
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

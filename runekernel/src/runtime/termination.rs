//! [`termination`]: the signals a service is asked to stop with.

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or, on Unix,
/// SIGTERM (what `kill`, systemd and container runtimes send). Pass it to
/// [`Runtime::shutdown_on`](crate::Runtime::shutdown_on), or to axum's
/// `with_graceful_shutdown`.
///
/// If a signal handler cannot be installed, it resolves on the other
/// signal only (and never, with neither), logging why.
///
/// ```no_run
/// # async fn run(rt: runekernel::Runtime) -> Result<(), runekernel::RuntimeError> {
/// rt.shutdown_on(runekernel::termination()).await?;
/// # Ok(())
/// # }
/// ```
pub async fn termination() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C: stopping"),
        () = terminate => tracing::info!("SIGTERM: stopping"),
    }
}

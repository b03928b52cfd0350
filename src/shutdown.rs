//! Turns SIGTERM and SIGINT into cancelled [`CancellationToken`]s: the first step of the
//! two-phase shutdown every binary runs (stop taking work, finish in-flight work, exit).
//!
//! The API puts a drain before those phases (`IMTICKET_HTTP_DRAIN_SECONDS`,
//! [`crate::startup::Application::run_until_stopped`]): it keeps serving while its readiness
//! says `draining`, so a load balancer takes it out first. A balancer or an orchestrator sends
//! one SIGTERM and waits; an operator at a terminal (Ctrl-C is SIGINT) or one who signals twice
//! wants the process gone now, so those skip what is left of the drain ([`Shutdown::urgent`]).

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// A shutdown as the signals asked for it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled by the first SIGTERM or SIGINT: stop taking work (the API drains first).
    pub requested: CancellationToken,
    /// Cancelled by SIGINT or by any signal after the first: stop without waiting for what is
    /// left of a drain.
    pub urgent: CancellationToken,
}

impl From<CancellationToken> for Shutdown {
    /// One token for both: stop as soon as it is cancelled, with no drain (what the owner of a
    /// token means, e.g. a test running the API in its own process).
    fn from(token: CancellationToken) -> Self {
        Self {
            requested: token.clone(),
            urgent: token,
        }
    }
}

/// Spawns the signal listener and returns the shutdown it drives.
pub fn signals() -> anyhow::Result<Shutdown> {
    let shutdown = Shutdown::default();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let driven = shutdown.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested; finishing in-flight work");
        driven.requested.cancel();
        if name != "SIGINT" {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "asked again: stopping without waiting any longer");
        }
        driven.urgent.cancel();
    });
    Ok(shutdown)
}

/// Spawns the signal listener and returns the token the first signal cancels (for processes
/// with nothing to drain: the workers).
pub fn on_signal() -> anyhow::Result<CancellationToken> {
    Ok(signals()?.requested)
}

//! The `expiry-scheduler` role: every quarter second turns the holds that are due (Redis's due
//! set) into `hold.expired` events; every 30 s sweeps PostgreSQL for due holds Redis forgot.
//! Several may run: an event published twice is a no-op for the worker.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::app::expiry::{publish_due, sweep};
use crate::retry::retry_delay;

const TICK: Duration = Duration::from_millis(250);
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub async fn run(deps: Deps, shutdown: CancellationToken) {
    tracing::info!("expiry scheduler started");
    let mut failures = 0u32;
    let mut last_sweep: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let mut round = publish_due(&deps).await.map(|_| ());
        if round.is_ok() && last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            last_sweep = Some(Instant::now());
            round = match sweep(&deps).await {
                Ok(0) => Ok(()),
                Ok(n) => {
                    tracing::info!(holds = n, "the sweep found due holds Redis had not scheduled");
                    Ok(())
                }
                Err(err) => Err(err),
            };
        }
        let wait = match round {
            Ok(()) => {
                failures = 0;
                TICK
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %format!("{err:#}"), failures, "expiry scheduling failed; backing off");
                retry_delay(failures).max(TICK)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("expiry scheduler stopped");
}

//! The `queue-promoter` role: admits waiting fans in line order at the configured rate, ends
//! expired active slots and pauses admission while a concert is sold out. Any number may run:
//! they share each concert's per-second budget in Redis, so together they never admit faster
//! than `IMTICKET_QUEUE_PROMOTE_PER_SECOND`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::app::waiting_room::{PromoterState, promote_all};
use crate::retry::retry_delay;

/// Pause between rounds: a tenth of a second, so a second's budget is spent early in that
/// second and the slots freed by expiry are refilled within 100 ms.
const TICK: Duration = Duration::from_millis(100);

pub async fn run(deps: Deps, shutdown: CancellationToken) {
    tracing::info!("queue promoter started");
    let state = PromoterState::default();
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let wait = match promote_all(&deps, &state).await {
            Ok(_) => {
                failures = 0;
                TICK
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %format!("{err:#}"), failures, "queue promotion failed; backing off");
                retry_delay(failures).max(TICK)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("queue promoter stopped");
}

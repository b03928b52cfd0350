//! Cache warm-up at API start: the first fans of a sale should not all miss at once.

use chrono::Utc;

use super::concerts::{CONCERT_TTL, load_concert_details};
use super::seat_map::layout_and_states;
use crate::app::Deps;
use crate::infra::postgres::catalog as repo;
use crate::infra::redis::keys::CacheEntry;

/// Loads the concert details and seat maps (layout kept here, states in Redis) of schedules starting within `window` into the
/// cache. Errors are logged.
pub async fn warm_up(deps: &Deps, window: chrono::Duration) {
    let result = async {
        let now = Utc::now();
        let schedules = repo::schedules_starting(&mut *deps.db.read().await?, now, now + window).await?;
        let mut concerts = std::collections::HashSet::new();
        for schedule in &schedules {
            // Through the cache's own path: what another API process already warmed is not
            // loaded again, and a change made meanwhile is not overwritten.
            if concerts.insert(schedule.concert_id) {
                deps.cache
                    .get_or_load(
                        "concert",
                        &CacheEntry::concert(schedule.concert_id),
                        CONCERT_TTL,
                        || load_concert_details(deps, schedule.concert_id),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            layout_and_states(deps, schedule.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        anyhow::Ok(schedules.len())
    }
    .await;
    match result {
        Ok(n) => tracing::info!(schedules = n, "cache warmed up"),
        Err(err) => tracing::warn!(error = %format!("{err:#}"), "cache warm-up failed"),
    }
}

//! The `outbox-relay` role: publishes whatever the use cases' fast path did not (a process
//! that died between commit and XADD, Redis down at commit time), and prunes published rows.
//! The publishing itself is [`crate::infra::publisher`]'s; several relays may run at once.

use std::time::{Duration, Instant};

use crate::infra::postgres::Db;
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::RelaySettings;
use crate::infra::postgres::outbox;
use crate::infra::publisher::{RedisWatch, prune, publish_oldest};
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;
use crate::retry::retry_delay;

async fn record_outbox_metrics(db: &Db) -> anyhow::Result<()> {
    let mut conn = db.read().await.context("acquire connection for outbox metrics")?;
    let (unpublished, oldest) = outbox::backlog(&mut conn).await?;
    metrics::gauge!("outbox_unpublished").set(unpublished as f64);
    let age = oldest.map_or(0.0, |at| (chrono::Utc::now() - at).num_milliseconds() as f64 / 1000.0);
    metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(age.max(0.0));
    Ok(())
}

/// The `outbox-relay` role: publishes until `shutdown`, backing off (with jitter) while
/// PostgreSQL or Redis is unavailable. A round in progress completes before it stops.
pub async fn run(db: Db, redis: Redis, keys: Keys, settings: RelaySettings, shutdown: CancellationToken) {
    tracing::info!("outbox relay started");
    let mut failures = 0u32;
    let mut last_housekeeping: Option<Instant> = None;
    let mut watch = RedisWatch::with_groups(settings.groups.clone());
    while !shutdown.is_cancelled() {
        // A Redis that restarted may have lost its last writes: what it lost is published again.
        if let Err(err) = watch.check(&db, &redis, &keys).await {
            tracing::debug!(error = %format!("{err:#}"), "checking which Redis this is failed");
        }
        if last_housekeeping.is_none_or(|at| at.elapsed() >= settings.housekeeping_interval) {
            last_housekeeping = Some(Instant::now());
            match prune(&db, settings.retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned published outbox rows"),
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "outbox pruning failed"),
            }
        }
        let wait = match publish_oldest(&db, &redis, &keys, settings.batch_size).await {
            Ok(n) => {
                failures = 0;
                if let Err(err) = record_outbox_metrics(&db).await {
                    tracing::debug!(error = %format!("{err:#}"), "outbox metrics failed");
                }
                // A full batch means more is probably waiting: go again at once.
                if n >= settings.batch_size {
                    Duration::ZERO
                } else {
                    settings.idle_wait
                }
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %format!("{err:#}"), failures, "outbox relay round failed; backing off");
                retry_delay(failures)
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
    tracing::info!("outbox relay stopped");
}

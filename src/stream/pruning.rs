//! Keeps `processed_events` bounded: every worker process that consumes a stream deletes the
//! records older than `IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS`, on the stream
//! maintenance period. Why the retention is safe: docs/event-backbone.md ("Processed-events
//! retention").

use std::time::{Duration, Instant};

use crate::infra::postgres::Db;
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::StreamSettings;
use crate::infra::postgres::processed_events;

/// Records deleted per statement: small enough that one statement takes milliseconds.
pub const PRUNE_BATCH: i64 = 10_000;

/// One prune pass: deletes every record older than `retention`, in batches of
/// [`PRUNE_BATCH`], each its own short transaction. Stops early, between batches, when
/// `stop` is cancelled (the rest waits for the next pass). Several passes at once (several
/// workers) share the rows. Returns how many records it deleted.
pub async fn prune_processed_events(db: &Db, retention: Duration, stop: &CancellationToken) -> anyhow::Result<u64> {
    let before = chrono::Utc::now()
        - chrono::Duration::from_std(retention).context("processed-events retention out of range")?;
    let mut total = 0;
    loop {
        let mut conn = db
            .write()
            .await
            .context("acquire connection for processed-events pruning")?;
        let deleted = processed_events::prune(&mut conn, before, PRUNE_BATCH).await?;
        conn.commit().await.context("commit processed-events pruning")?;
        total += deleted;
        if deleted < PRUNE_BATCH as u64 || stop.is_cancelled() {
            return Ok(total);
        }
    }
}

/// Prunes records older than `processed_events_retention` every `maintenance_interval` until
/// `shutdown`. Failures (PostgreSQL down) are logged and the next period tries again;
/// nothing depends on a pass succeeding soon.
pub async fn run(db: Db, settings: StreamSettings, shutdown: CancellationToken) {
    let (retention, interval) = (settings.processed_events_retention, settings.maintenance_interval);
    loop {
        let started = Instant::now();
        match prune_processed_events(&db, retention, &shutdown).await {
            Ok(0) => {}
            Ok(rows) => {
                tracing::info!(
                    rows,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "pruned processed-events records"
                )
            }
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "processed-events pruning failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

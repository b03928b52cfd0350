//! Publishing outbox rows to their streams: the fast path right after a use case commits,
//! and the `outbox-relay` role that publishes whatever is still unpublished (a process that
//! died between commit and XADD, Redis down at commit time).
//!
//! A row is locked (`FOR UPDATE SKIP LOCKED`), XADDed, and marked published in one
//! transaction, so several relays never publish the same row concurrently. If the process
//! dies after XADD and before the commit, the row is published again later: consumers see
//! the same `event_id` twice and their processed-events record makes the second a no-op.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::envelope::Envelope;
use super::{Keys, Stream, consumer::retry_delay};
use crate::infra::outbox::{self, NewEvent, OutboxRow};
use crate::infra::redis::Redis;

/// Writes `envelope` to the outbox of `stream` in the caller's transaction. After the commit,
/// pass the returned id to [`publish_now`].
pub async fn enqueue(conn: &mut PgConnection, stream: Stream, envelope: &Envelope) -> anyhow::Result<i64> {
    outbox::insert(
        conn,
        &NewEvent {
            event_id: envelope.event_id,
            stream: stream.name(),
            event_type: &envelope.event_type,
            version: i32::try_from(envelope.version).unwrap_or(i32::MAX),
            payload: &envelope.payload,
            trace_id: envelope.trace_id.as_deref(),
            occurred_at: envelope.occurred_at,
        },
    )
    .await
}

fn envelope_of(row: &OutboxRow) -> Envelope {
    Envelope {
        event_id: row.event_id,
        event_type: row.event_type.clone(),
        version: u32::try_from(row.version).unwrap_or(0),
        occurred_at: row.occurred_at,
        payload: row.payload.clone(),
        trace_id: row.trace_id.clone(),
    }
}

/// XADDs the rows in one pipeline; returns the entry ids in row order.
async fn xadd_all(redis: &Redis, keys: &Keys, rows: &[OutboxRow]) -> anyhow::Result<Vec<String>> {
    let mut conn = redis.connection().await?;
    let mut pipe = redis::pipe();
    for row in rows {
        pipe.cmd("XADD")
            .arg(keys.stream_named(&row.stream))
            .arg("*")
            .arg(envelope_of(row).to_fields());
    }
    pipe.query_async(&mut conn).await.context("XADD outbox events")
}

async fn publish_claimed(db: &PgPool, redis: &Redis, keys: &Keys, claim: Claim<'_>) -> anyhow::Result<usize> {
    let mut tx = db.begin().await.context("begin outbox publish")?;
    let rows = match claim {
        Claim::Oldest(limit) => outbox::claim_unpublished(&mut tx, limit).await?,
        Claim::Ids(ids) => outbox::claim_ids(&mut tx, ids).await?,
    };
    if rows.is_empty() {
        return Ok(0);
    }
    // On failure the transaction rolls back and the rows stay unpublished for the relay.
    let stream_ids = xadd_all(redis, keys, &rows).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    outbox::mark_published(&mut tx, &ids, &stream_ids).await?;
    tx.commit().await.context("commit outbox publish")?;
    metrics::counter!("outbox_published_total").increment(rows.len() as u64);
    Ok(rows.len())
}

enum Claim<'a> {
    Oldest(i64),
    Ids(&'a [i64]),
}

/// The fast path: publishes the just-committed rows `ids`. Failures are logged, not
/// returned: the commit already happened, and the relay publishes the rows later.
pub async fn publish_now(db: &PgPool, redis: &Redis, keys: &Keys, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    if let Err(err) = publish_claimed(db, redis, keys, Claim::Ids(ids)).await {
        tracing::warn!(error = %format!("{err:#}"), "publishing after commit failed; the outbox relay will publish");
    }
}

/// One relay round: publishes up to `limit` of the oldest unpublished rows. Returns how many.
pub async fn relay_batch(db: &PgPool, redis: &Redis, keys: &Keys, limit: usize) -> anyhow::Result<usize> {
    publish_claimed(db, redis, keys, Claim::Oldest(limit as i64)).await
}

/// Deletes published rows older than `retention`. Returns how many.
pub async fn prune(db: &PgPool, retention: Duration) -> anyhow::Result<u64> {
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(1));
    let mut total = 0;
    loop {
        let mut conn = db.acquire().await.context("acquire connection for outbox pruning")?;
        let pruned = outbox::prune_published(&mut conn, before, 10_000).await?;
        total += pruned;
        if pruned < 10_000 {
            return Ok(total);
        }
    }
}

async fn record_outbox_metrics(db: &PgPool) -> anyhow::Result<()> {
    let mut conn = db.acquire().await.context("acquire connection for outbox metrics")?;
    let status = outbox::status(&mut conn).await?;
    metrics::gauge!("outbox_unpublished").set(status.unpublished as f64);
    let age = status
        .oldest_unpublished_at
        .map_or(0.0, |at| (chrono::Utc::now() - at).num_milliseconds() as f64 / 1000.0);
    metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(age.max(0.0));
    Ok(())
}

pub struct RelaySettings {
    pub batch_size: usize,
    /// Pause between rounds that found nothing to publish.
    pub idle_wait: Duration,
    pub retention: Duration,
    pub housekeeping_interval: Duration,
}

/// The `outbox-relay` role: publishes until `shutdown`, backing off (with jitter) while
/// PostgreSQL or Redis is unavailable. A round in progress completes before it stops.
pub async fn run(db: PgPool, redis: Redis, keys: Keys, settings: RelaySettings, shutdown: CancellationToken) {
    tracing::info!("outbox relay started");
    let mut failures = 0u32;
    let mut last_housekeeping: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        if last_housekeeping.is_none_or(|at| at.elapsed() >= settings.housekeeping_interval) {
            last_housekeeping = Some(Instant::now());
            match prune(&db, settings.retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned published outbox rows"),
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "outbox pruning failed"),
            }
        }
        let wait = match relay_batch(&db, &redis, &keys, settings.batch_size).await {
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

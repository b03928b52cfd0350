//! Holds by due time, in Redis (`expiry:due`), and turning the due ones into `hold.expired`
//! events on the expiry stream. At least once: an entry is removed from the set only after its
//! event was added, so a crash in between publishes it twice (the worker's processed-events
//! record makes the second a no-op). PostgreSQL stays the truth: a periodic sweep
//! ([`crate::infra::postgres::reservations::due_held`]) finds any hold this set forgot.

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Redis;
use super::keys::Keys;
use super::streams;
use crate::events::{HoldExpired, encode};

/// Remembers a new hold's due time (in its reservation's partition of the due holds).
pub async fn schedule(redis: &Redis, keys: &Keys, reservation_id: Uuid, due: DateTime<Utc>) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    let _: i64 = redis::cmd("ZADD")
        .arg(keys.expiry_due_for(reservation_id))
        .arg(due.timestamp_millis())
        .arg(reservation_id.to_string())
        .query_async(&mut conn)
        .await
        .context("schedule hold expiry")?;
    Ok(())
}

/// Whether any of these reservations is in the due holds (a committed hold not expired yet).
pub async fn any_scheduled(redis: &Redis, keys: &Keys, reservations: &[Uuid]) -> anyhow::Result<bool> {
    let mut conn = redis.connection().await?;
    for reservation in reservations {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(keys.expiry_due_for(*reservation))
            .arg(reservation.to_string())
            .query_async(&mut conn)
            .await
            .context("look up hold expiries")?;
        if score.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Publishes `hold.expired` for these reservations, each on its partition of the expiry stream.
pub async fn publish(redis: &Redis, keys: &Keys, reservations: &[Uuid]) -> anyhow::Result<()> {
    if reservations.is_empty() {
        return Ok(());
    }
    let entries = reservations
        .iter()
        .map(|id| {
            let key = keys.stream_for(crate::events::Stream::Expiry, *id);
            Ok((key, encode(&HoldExpired { reservation_id: *id })?.to_fields()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut conn = redis.connection().await?;
    streams::add_all(&mut conn, &entries)
        .await
        .context("publish hold.expired")?;
    Ok(())
}

/// Moves up to `limit` due holds of each partition to the expiry stream; returns how many.
pub async fn publish_due(redis: &Redis, keys: &Keys, limit: usize) -> anyhow::Result<usize> {
    let mut conn = redis.connection().await?;
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.context("TIME")?;
    let now_ms = secs * 1000 + micros / 1000;
    let mut published = 0;
    for due_key in keys.expiry_due_keys() {
        let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&due_key)
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .context("due holds")?;
        let ids: Vec<Uuid> = due.iter().filter_map(|d| d.parse().ok()).collect();
        publish(redis, keys, &ids).await?;
        if !due.is_empty() {
            let _: i64 = redis::cmd("ZREM")
                .arg(&due_key)
                .arg(&due)
                .query_async(&mut conn)
                .await
                .context("unschedule published holds")?;
        }
        published += due.len();
    }
    Ok(published)
}

//! Seat gates in Redis: `SET NX PX` per seat, all or none in one script. They only turn losers
//! away before they cost a PostgreSQL statement; PostgreSQL decides who holds a seat, so a gate
//! that expired or was lost in a Redis restart can never let two holds win.

use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;

use super::Redis;
use super::keys::Keys;
use super::scripts::{SEAT_GATES_RELEASE, SEAT_GATES_TAKE};

fn keys_of(keys: &Keys, schedule_id: Uuid, seats: &[Uuid]) -> Vec<String> {
    seats.iter().map(|seat| keys.seat_gate(schedule_id, *seat)).collect()
}

/// Takes the gates of `seats` for `owner`, all or none (`lua/seat_gates_take.lua`). Returns the seats someone else holds
/// (empty: taken).
pub async fn take(
    redis: &Redis,
    keys: &Keys,
    schedule_id: Uuid,
    seats: &[Uuid],
    owner: Uuid,
    ttl: Duration,
) -> anyhow::Result<Vec<Uuid>> {
    let mut conn = redis.connection().await?;
    let mut invocation = SEAT_GATES_TAKE.prepare_invoke();
    for key in keys_of(keys, schedule_id, seats) {
        invocation.key(key);
    }
    let taken: Vec<usize> = invocation
        .arg(owner.to_string())
        .arg(ttl.as_millis().max(1) as u64)
        .invoke_async(&mut conn)
        .await
        .context("take seat gates")?;
    Ok(taken
        .into_iter()
        .filter_map(|i| seats.get(i.wrapping_sub(1)).copied())
        .collect())
}

/// Gives `owner`'s gates of `seats` back (a failed hold, a cancel, an expiry, a sale).
pub async fn release(redis: &Redis, keys: &Keys, schedule_id: Uuid, seats: &[Uuid], owner: Uuid) -> anyhow::Result<()> {
    if seats.is_empty() {
        return Ok(());
    }
    let mut conn = redis.connection().await?;
    let mut invocation = SEAT_GATES_RELEASE.prepare_invoke();
    for key in keys_of(keys, schedule_id, seats) {
        invocation.key(key);
    }
    let _: i64 = invocation
        .arg(owner.to_string())
        .invoke_async(&mut conn)
        .await
        .context("release seat gates")?;
    Ok(())
}

/// Who holds the gates of `seats` (`MGET`), in order; `None` for a free gate or an owner that
/// is not a UUID.
pub async fn owners(
    redis: &Redis,
    keys: &Keys,
    schedule_id: Uuid,
    seats: &[Uuid],
) -> anyhow::Result<Vec<Option<Uuid>>> {
    if seats.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = redis.connection().await?;
    let owners: Vec<Option<String>> = redis::cmd("MGET")
        .arg(keys_of(keys, schedule_id, seats))
        .query_async(&mut conn)
        .await
        .context("read seat gate owners")?;
    Ok(owners
        .into_iter()
        .map(|owner| owner.and_then(|o| o.parse().ok()))
        .collect())
}

/// Sets the gates of `seats` to `owner` whoever held them (a hold PostgreSQL granted past a
/// stale gate).
pub async fn set(
    redis: &Redis,
    keys: &Keys,
    schedule_id: Uuid,
    seats: &[Uuid],
    owner: Uuid,
    ttl: Duration,
) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    let mut pipe = redis::pipe();
    for key in keys_of(keys, schedule_id, seats) {
        pipe.cmd("SET")
            .arg(key)
            .arg(owner.to_string())
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await.context("set seat gates")
}

//! The states of a schedule's seats in Redis: one string, one byte a seat in seat-map order
//! (`a` available, `h` held, `s` sold). A seat map read is one `GET` of it; a hold, release or
//! sale writes its seats' bytes with `SETRANGE` — only while the string exists and has the
//! length the writer's layout expects, so a write never creates a partial or misaligned copy.
//! The string lives a short TTL (writes keep it, `SETRANGE` leaves the TTL alone) and is then
//! rebuilt from PostgreSQL, which bounds how long a lost write can show. PostgreSQL stays the
//! truth.

use std::time::Duration;

use anyhow::Context;
use redis::AsyncCommands;
use uuid::Uuid;

use super::Redis;
use super::keys::Keys;
use super::scripts::SEAT_STATES_WRITE;

/// The states string of a schedule, if built.
pub async fn get(redis: &Redis, keys: &Keys, schedule_id: Uuid) -> anyhow::Result<Option<Vec<u8>>> {
    let mut conn = redis.connection().await?;
    conn.get(keys.seat_states(schedule_id)).await.context("GET seat states")
}

/// Stores a states string freshly built from PostgreSQL for `ttl`.
pub async fn put(redis: &Redis, keys: &Keys, schedule_id: Uuid, states: &[u8], ttl: Duration) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    conn.pset_ex::<_, _, ()>(keys.seat_states(schedule_id), states, ttl.as_millis().max(1) as u64)
        .await
        .context("SET seat states")
}

/// Writes `changes` (seat offset, state byte) through (`lua/seat_states_write.lua`), if the string is built with
/// `expected_len` seats. Returns whether it wrote.
pub async fn write(
    redis: &Redis,
    keys: &Keys,
    schedule_id: Uuid,
    expected_len: usize,
    changes: &[(usize, u8)],
) -> anyhow::Result<bool> {
    if changes.is_empty() {
        return Ok(false);
    }
    let mut conn = redis.connection().await?;
    let mut invocation = SEAT_STATES_WRITE.prepare_invoke();
    invocation.key(keys.seat_states(schedule_id)).arg(expected_len);
    for (offset, state) in changes {
        invocation.arg(*offset).arg(&[*state][..]);
    }
    let wrote: i64 = invocation.invoke_async(&mut conn).await.context("write seat states")?;
    Ok(wrote == 1)
}

/// Drops the states string (the schedule's seats were added to: the layout changed).
pub async fn forget(redis: &Redis, keys: &Keys, schedule_id: Uuid) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    conn.del::<_, ()>(keys.seat_states(schedule_id))
        .await
        .context("DEL seat states")
}

/// The length of the states string (0: not built).
pub async fn length(redis: &Redis, keys: &Keys, schedule_id: Uuid) -> anyhow::Result<usize> {
    let mut conn = redis.connection().await?;
    conn.strlen(keys.seat_states(schedule_id))
        .await
        .context("STRLEN seat states")
}

//! The waiting room in Redis: one Lua script per operation (`lua/queue_*.lua`), each touching
//! only one concert's keys (one hash tag, one Cluster slot), each reading the time from Redis
//! (`TIME`) so every API instance and promoter shares one clock. Data model: the table in
//! `keys.rs`; reasoning: docs/waiting-room.md.

use anyhow::Context;
use uuid::Uuid;

use super::Redis;
use super::keys::{Keys, QueueKeys};
pub use super::reply::AdmitReport;
use super::scripts::{QUEUE_ADMIT, QUEUE_JOIN, QUEUE_LEAVE, QUEUE_RELEASE, QUEUE_STATUS};
use crate::domain::queue::{Admission, EntryView};

/// Waiting-room counts for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub concert_id: Uuid,
    /// Waiting after the opening (0 before it).
    pub waiting: u64,
    /// Joined before the opening (0 after it).
    pub pre_queue: u64,
    pub active: u64,
    pub admitted_last_minute: u64,
    pub sold_out: bool,
    /// An admin paused admission (`POST /admin/concerts/{id}/queue/pause`).
    pub paused: bool,
    /// Unix ms; 0: open.
    pub opens_at_ms: i64,
}

fn invoke<'a>(script: &'a redis::Script, keys: &QueueKeys) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for key in keys.all() {
        invocation.key(key);
    }
    invocation
}

/// ZCARD waiting, ZCARD active, HMGET meta opens_at sold_out paused, TIME.
type StatsReply = (u64, u64, (Option<i64>, Option<String>, Option<String>), (i64, i64));

/// One concert's waiting room in Redis.
pub struct WaitingRoom<'a> {
    redis: &'a Redis,
    keys: QueueKeys,
}

impl<'a> WaitingRoom<'a> {
    pub fn new(redis: &'a Redis, keys: &Keys, concert_id: Uuid) -> Self {
        Self {
            redis,
            keys: keys.queue(concert_id),
        }
    }

    /// Joins `user` (idempotent: a live entry is returned as it is). `fresh` becomes the
    /// entry id if a new entry is made.
    pub async fn join(
        &self,
        user: Uuid,
        fresh: Uuid,
        opens_at_ms: i64,
        admission: Admission,
    ) -> anyhow::Result<EntryView> {
        let mut conn = self.redis.connection().await?;
        invoke(&QUEUE_JOIN, &self.keys)
            .arg(user.to_string())
            .arg(fresh.to_string())
            .arg(opens_at_ms.max(0))
            .arg(admission.capacity)
            .arg(admission.per_second)
            .arg(admission.active_ttl_ms)
            .arg(rand::random::<f64>())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: join")
    }

    pub async fn status(&self, entry: Uuid) -> anyhow::Result<EntryView> {
        let mut conn = self.redis.connection().await?;
        invoke(&QUEUE_STATUS, &self.keys)
            .arg(entry.to_string())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: status")
    }

    /// Returns whether the entry was still in line or active.
    pub async fn leave(&self, user: Uuid, entry: Uuid) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let removed: i64 = invoke(&QUEUE_LEAVE, &self.keys)
            .arg(user.to_string())
            .arg(entry.to_string())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: leave")?;
        Ok(removed > 0)
    }

    /// Ends `user`'s active slot (their payment completed; the entry then reads `done`);
    /// returns whether there was one. `done_for_ms`: how long the entry reads `done` at most.
    pub async fn release(&self, user: Uuid, done_for_ms: u64) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let removed: i64 = invoke(&QUEUE_RELEASE, &self.keys)
            .arg(user.to_string())
            .arg(done_for_ms.max(1))
            .invoke_async(&mut conn)
            .await
            .context("waiting room: release")?;
        Ok(removed > 0)
    }

    /// Admits up to `most` waiting entries in line order, within the capacity and the current
    /// second's budget, after ending the slots whose time is up.
    pub async fn admit(&self, admission: Admission, most: u32) -> anyhow::Result<AdmitReport> {
        let mut conn = self.redis.connection().await?;
        invoke(&QUEUE_ADMIT, &self.keys)
            .arg(admission.capacity)
            .arg(admission.per_second)
            .arg(admission.active_ttl_ms)
            .arg(most)
            .invoke_async(&mut conn)
            .await
            .context("waiting room: admit")
    }

    /// Marks the concert sold out (admission pauses) or not.
    pub async fn set_sold_out(&self, sold_out: bool) -> anyhow::Result<()> {
        self.set_flag("sold_out", sold_out).await
    }

    /// Pauses admission (nobody is admitted, joiners wait in line) or resumes it.
    pub async fn set_paused(&self, paused: bool) -> anyhow::Result<()> {
        self.set_flag("paused", paused).await
    }

    /// One of the flags in the line's `meta` hash that the admission script reads.
    async fn set_flag(&self, field: &'static str, on: bool) -> anyhow::Result<()> {
        let mut conn = self.redis.connection().await?;
        let () = redis::cmd("HSET")
            .arg(&self.keys.meta)
            .arg(field)
            .arg(u8::from(on))
            .query_async(&mut conn)
            .await
            .with_context(|| format!("waiting room: {field} flag"))?;
        Ok(())
    }

    /// Counts for operators (`imticket-admin queue stats`) and metrics.
    pub async fn stats(&self, concert_id: Uuid) -> anyhow::Result<QueueStats> {
        let mut conn = self.redis.connection().await?;
        let (in_line, active, meta, now): StatsReply = redis::pipe()
            .cmd("ZCARD")
            .arg(&self.keys.waiting)
            .cmd("ZCARD")
            .arg(&self.keys.active)
            .cmd("HMGET")
            .arg(&self.keys.meta)
            .arg("opens_at")
            .arg("sold_out")
            .arg("paused")
            .cmd("TIME")
            .query_async(&mut conn)
            .await
            .context("waiting room: stats")?;
        let now_ms = now.0 * 1000 + now.1 / 1000;
        let recent: u64 = redis::cmd("ZCOUNT")
            .arg(&self.keys.admitted)
            .arg(now_ms - 60_000)
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .context("waiting room: admissions")?;
        let opens_at_ms = meta.0.unwrap_or(0);
        let pre = now_ms < opens_at_ms;
        Ok(QueueStats {
            concert_id,
            waiting: if pre { 0 } else { in_line },
            pre_queue: if pre { in_line } else { 0 },
            active,
            admitted_last_minute: recent,
            sold_out: meta.1.as_deref() == Some("1"),
            paused: meta.2.as_deref() == Some("1"),
            opens_at_ms,
        })
    }

    /// Whether this concert has a waiting room at all: any of its keys exists (the first join
    /// writes `meta`, which stays after the line empties).
    pub async fn exists(&self) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let found: u64 = redis::cmd("EXISTS")
            .arg(self.keys.all().as_slice())
            .query_async(&mut conn)
            .await
            .context("waiting room: exists")?;
        Ok(found > 0)
    }

    /// Whether nothing is left: nobody waiting or active.
    pub async fn is_empty(&self) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let (waiting, active): (u64, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(&self.keys.waiting)
            .cmd("ZCARD")
            .arg(&self.keys.active)
            .query_async(&mut conn)
            .await
            .context("waiting room: size")?;
        Ok(waiting == 0 && active == 0)
    }
}

/// The concerts with a waiting room (the promoter's work list): a set, so no `KEYS` or `SCAN`.
pub async fn open_lines(redis: &Redis, keys: &Keys) -> anyhow::Result<Vec<Uuid>> {
    let mut conn = redis.connection().await?;
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.queue_open())
        .query_async(&mut conn)
        .await
        .context("waiting room: open lines")?;
    Ok(members.iter().filter_map(|m| m.parse().ok()).collect())
}

/// Adds a concert to the open lines. Called after every join, so a line the promoter just
/// dropped as empty is listed again by the join that refilled it.
pub async fn mark_open(redis: &Redis, keys: &Keys, concert_id: Uuid) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    let _: i64 = redis::cmd("SADD")
        .arg(keys.queue_open())
        .arg(concert_id.to_string())
        .query_async(&mut conn)
        .await
        .context("waiting room: list the line")?;
    Ok(())
}

/// Drops a concert from the open lines if its room is empty. Removes first, then checks again:
/// a join that refilled the room in between is listed again by it or by this check.
pub async fn drop_if_empty(redis: &Redis, keys: &Keys, concert_id: Uuid) -> anyhow::Result<bool> {
    let room = WaitingRoom::new(redis, keys, concert_id);
    if !room.is_empty().await? {
        return Ok(false);
    }
    let mut conn = redis.connection().await?;
    let _: i64 = redis::cmd("SREM")
        .arg(keys.queue_open())
        .arg(concert_id.to_string())
        .query_async(&mut conn)
        .await
        .context("waiting room: unlist the line")?;
    if !room.is_empty().await? {
        mark_open(redis, keys, concert_id).await?;
        return Ok(false);
    }
    Ok(true)
}

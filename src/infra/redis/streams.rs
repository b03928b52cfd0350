//! Stream and consumer-group commands, each one function with a typed answer: what the stream
//! runtime ([`crate::stream`]), the outbox publisher, the expiry scheduler and the operator CLI
//! say to Redis about streams. Policy (when to reclaim, what a dead letter holds, where it is
//! safe to trim) is the runtime's; this file only speaks the protocol.

use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionLike;
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply, StreamPendingCountReply, StreamPendingId};
use serde::Serialize;

pub use super::connection::Topology;
use super::keys;
use super::protocol::{BEFORE_FIRST, EntryId, HIGHEST, LOWEST, NEW_ENTRY, UNDELIVERED};
use super::reply::{ReadEntries, StreamEntry, StreamSummary};
use super::scripts::STREAM_REMOVE_IDLE_CONSUMERS;

/// Flat field/value pairs of an entry, as XADD takes them.
pub type Fields = [(String, String)];

/// `XGROUP CREATE key group 0 MKSTREAM`; an existing group (BUSYGROUP) is fine.
pub async fn create_group(conn: &mut impl ConnectionLike, key: &str, group: &str) -> anyhow::Result<()> {
    create_group_if_missing(conn, key, group).await.map(|_| ())
}

/// As [`create_group`]; says whether the group was created now (false: it existed).
pub async fn create_group_if_missing(conn: &mut impl ConnectionLike, key: &str, group: &str) -> anyhow::Result<bool> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg(BEFORE_FIRST)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(true),
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(false),
        Err(err) => Err(anyhow::Error::new(err).context(format!("create consumer group {group} on {key}"))),
    }
}

/// The field of `seen_key` ([`super::keys::Keys::groups_seen`]) that says when a consumer
/// of `group` on stream `key` was last seen.
pub fn seen_field(key: &str, group: &str) -> String {
    format!("{key}|{group}")
}

/// Notes that a consumer of `group` on `key` runs now (`HSET`), or, with `only_if_new`, that
/// the group came to be now (`HSETNX`: its abandonment is counted from its creation).
pub async fn note_group_seen(
    conn: &mut impl ConnectionLike,
    seen_key: &str,
    key: &str,
    group: &str,
    now_ms: i64,
    only_if_new: bool,
) -> anyhow::Result<()> {
    let _changed: i64 = redis::cmd(if only_if_new { "HSETNX" } else { "HSET" })
        .arg(seen_key)
        .arg(seen_field(key, group))
        .arg(now_ms)
        .query_async(conn)
        .await
        .context("note a consumer group as seen")?;
    Ok(())
}

/// When a consumer of each group of `key` was last seen (ms), for the groups noted at all.
pub async fn groups_seen(
    conn: &mut impl ConnectionLike,
    seen_key: &str,
    key: &str,
    groups: &[&str],
) -> anyhow::Result<Vec<Option<i64>>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(seen_key);
    for group in groups {
        cmd.arg(seen_field(key, group));
    }
    cmd.query_async(conn).await.context("HMGET consumer groups seen")
}

/// Whether `err` says the stream or group does not exist (Redis restarted without its data,
/// or an operator deleted it): the consumer recreates the group.
pub fn is_missing_group(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<redis::RedisError>())
        .any(|e| e.code() == Some("NOGROUP"))
}

/// `XREADGROUP GROUP group consumer COUNT count [BLOCK ms] STREAMS key >`: up to `count`
/// entries never delivered to the group, now delivered to `consumer`.
pub async fn read_group(
    conn: &mut impl ConnectionLike,
    key: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
) -> anyhow::Result<Vec<StreamEntry>> {
    let ReadEntries(entries) = read_group_cmd(key, group, consumer, count, block)
        .query_async(conn)
        .await
        .context("XREADGROUP")?;
    Ok(entries)
}

/// The command of [`read_group`], also sent by the consumer's lean reader
/// ([`super::GroupReader`]).
pub(super) fn read_group_cmd(
    key: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(group).arg(consumer).arg("COUNT").arg(count);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(key).arg(UNDELIVERED);
    cmd
}

/// `XACK key group ids…`; returns how many were pending.
pub async fn ack(conn: &mut impl ConnectionLike, key: &str, group: &str, ids: &[String]) -> anyhow::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let acked: u64 = redis::cmd("XACK")
        .arg(key)
        .arg(group)
        .arg(ids)
        .query_async(conn)
        .await
        .context("XACK")?;
    Ok(acked)
}

/// `XPENDING key group IDLE min_idle start + count`: a page of the group's pending entries
/// idle at least `min_idle`, from `start` (an id, or an exclusive `(id`; `None`: the head).
pub async fn pending_idle(
    conn: &mut impl ConnectionLike,
    key: &str,
    group: &str,
    min_idle: Duration,
    start: Option<&str>,
    count: usize,
) -> anyhow::Result<Vec<StreamPendingId>> {
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(key)
        .arg(group)
        .arg("IDLE")
        .arg(min_idle.as_millis() as u64)
        .arg(start.unwrap_or(LOWEST))
        .arg(HIGHEST)
        .arg(count)
        .query_async(conn)
        .await
        .context("XPENDING")?;
    Ok(reply.ids)
}

/// `XCLAIM key group consumer min_idle ids…` (without JUSTID, so delivery counts go up): the
/// claimed entries in the order asked; `None` where the stream entry was deleted (Redis 6.2;
/// Redis 7 leaves those out of the reply and the pending list by itself).
pub async fn claim(
    conn: &mut impl ConnectionLike,
    key: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    ids: &[String],
) -> anyhow::Result<Vec<Option<StreamEntry>>> {
    redis::cmd("XCLAIM")
        .arg(key)
        .arg(group)
        .arg(consumer)
        .arg(min_idle.as_millis() as u64)
        .arg(ids)
        .query_async(conn)
        .await
        .context("XCLAIM")
}

/// `XCLAIM key group consumer 0 ids… RETRYCOUNT count JUSTID`: keeps the entries pending under
/// `consumer` with their delivery count set to `count` (and their idle time reset, so their
/// back-off starts again). Used to take back a delivery that did not count: the handler could
/// not even try, a dependency being down.
pub async fn set_delivery_count(
    conn: &mut impl ConnectionLike,
    key: &str,
    group: &str,
    consumer: &str,
    ids: &[String],
    count: u32,
) -> anyhow::Result<()> {
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(key)
        .arg(group)
        .arg(consumer)
        .arg(0)
        .arg(ids)
        .arg("RETRYCOUNT")
        .arg(count)
        .arg("JUSTID")
        .query_async(conn)
        .await
        .context("XCLAIM RETRYCOUNT")?;
    Ok(())
}

/// `XADD key * fields…`, one per `(key, fields)`; the new ids in order. One pipeline per
/// key (on a Cluster a pipeline must stay in one slot), the pipelines sent together.
pub async fn add_all<F: redis::ToRedisArgs>(
    conn: &mut (impl ConnectionLike + Clone),
    entries: &[(String, F)],
) -> anyhow::Result<Vec<String>> {
    let mut by_key: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, (key, _)) in entries.iter().enumerate() {
        match by_key.iter_mut().find(|(k, _)| *k == key.as_str()) {
            Some((_, positions)) => positions.push(i),
            None => by_key.push((key.as_str(), vec![i])),
        }
    }
    let sends = by_key.iter().map(|(key, positions)| {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        for &i in positions {
            pipe.cmd("XADD").arg(*key).arg(NEW_ENTRY).arg(&entries[i].1);
        }
        async move { pipe.query_async::<Vec<String>>(&mut conn).await }
    });
    let replies = futures_util::future::try_join_all(sends).await.context("XADD")?;
    let mut ids = vec![String::new(); entries.len()];
    for ((_, positions), reply) in by_key.iter().zip(replies) {
        for (&i, id) in positions.iter().zip(reply) {
            ids[i] = id;
        }
    }
    Ok(ids)
}

/// Adds each `(id, fields)` to `to` and acks `id` on `from` for `group` (the dead-letter move).
/// On one Redis atomically (MULTI): an entry is never both lost and unacked. On a Cluster the
/// two streams are in different slots: first every XADD, then the XACKs, so a crash between
/// leaves the entry pending (it is moved again, a second dead letter of the same event), never
/// acked without its dead letter.
pub async fn move_entries(
    conn: &mut (impl ConnectionLike + Topology),
    to: &str,
    from: &str,
    group: &str,
    entries: &[(String, Vec<(String, String)>)],
) -> anyhow::Result<()> {
    if conn.is_cluster() && keys::slot(to) != keys::slot(from) {
        let mut adds = redis::pipe();
        let mut acks = redis::pipe();
        for (id, fields) in entries {
            adds.cmd("XADD").arg(to).arg(NEW_ENTRY).arg(fields).ignore();
            acks.cmd("XACK").arg(from).arg(group).arg(id).ignore();
        }
        adds.query_async::<()>(conn).await.context("add dead letters")?;
        return acks.query_async::<()>(conn).await.context("ack dead-lettered entries");
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (id, fields) in entries {
        pipe.cmd("XADD").arg(to).arg(NEW_ENTRY).arg(fields).ignore();
        pipe.cmd("XACK").arg(from).arg(group).arg(id).ignore();
    }
    pipe.query_async::<()>(conn).await.context("move entries")
}

/// Adds `fields` to `to` and deletes entry `id` of `from` (a dead-letter replay); returns the
/// new entry's id. Atomic on one Redis; on a Cluster the add comes first, so a crash between
/// leaves the dead letter in place (a second replay publishes the same `event_id` again,
/// which the handlers absorb), never an event in neither stream.
pub async fn republish(
    conn: &mut (impl ConnectionLike + Topology),
    to: &str,
    fields: &Fields,
    from: &str,
    id: &str,
) -> anyhow::Result<String> {
    if conn.is_cluster() && keys::slot(to) != keys::slot(from) {
        let new_id: String = redis::cmd("XADD")
            .arg(to)
            .arg(NEW_ENTRY)
            .arg(fields)
            .query_async(conn)
            .await
            .context("republish entry")?;
        redis::cmd("XDEL")
            .arg(from)
            .arg(id)
            .query_async::<i64>(conn)
            .await
            .context("delete the replayed dead letter")?;
        return Ok(new_id);
    }
    let (new_id, _deleted): (String, i64) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(to)
        .arg(NEW_ENTRY)
        .arg(fields)
        .cmd("XDEL")
        .arg(from)
        .arg(id)
        .query_async(conn)
        .await
        .context("republish entry")?;
    Ok(new_id)
}

/// `XRANGE key start end [COUNT count]`.
pub async fn range(
    conn: &mut impl ConnectionLike,
    key: &str,
    start: &str,
    end: &str,
    count: Option<usize>,
) -> anyhow::Result<Vec<StreamEntry>> {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(key).arg(start).arg(end);
    if let Some(count) = count {
        cmd.arg("COUNT").arg(count);
    }
    cmd.query_async(conn).await.context("XRANGE")
}

/// Every entry of `key` in pages of `page`, from the first (`XRANGE` with exclusive starts).
pub async fn each_page(
    conn: &mut impl ConnectionLike,
    key: &str,
    page: usize,
    mut visit: impl FnMut(Vec<StreamEntry>) -> std::ops::ControlFlow<()>,
) -> anyhow::Result<()> {
    let mut start = LOWEST.to_owned();
    loop {
        let entries = range(conn, key, &start, HIGHEST, Some(page)).await?;
        let Some(last) = entries.last() else { return Ok(()) };
        start = super::protocol::after(&last.id);
        let full = entries.len() >= page;
        if visit(entries).is_break() || !full {
            return Ok(());
        }
    }
}

/// `XDEL key ids…`; returns how many were deleted.
pub async fn delete(conn: &mut impl ConnectionLike, key: &str, ids: &[&str]) -> anyhow::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    redis::cmd("XDEL")
        .arg(key)
        .arg(ids)
        .query_async(conn)
        .await
        .context("XDEL")
}

/// `XLEN key` (0 for a stream that does not exist).
pub async fn len(conn: &mut impl ConnectionLike, key: &str) -> anyhow::Result<u64> {
    redis::cmd("XLEN").arg(key).query_async(conn).await.context("XLEN")
}

/// `XTRIM key MINID id`: removes the entries below `id`; returns how many.
pub async fn trim_below(conn: &mut impl ConnectionLike, key: &str, id: EntryId) -> anyhow::Result<u64> {
    let removed: i64 = redis::cmd("XTRIM")
        .arg(key)
        .arg("MINID")
        .arg(id.to_string())
        .query_async(conn)
        .await
        .context("XTRIM")?;
    Ok(removed.max(0) as u64)
}

/// Removes, atomically, every consumer of `group` that owns no pending entry and has been idle
/// longer than `idle`, except `keep` (`lua/stream_remove_idle_consumers.lua`). A stream or
/// group that does not exist (yet) has none to remove.
pub async fn remove_dead_consumers(
    conn: &mut impl ConnectionLike,
    key: &str,
    group: &str,
    idle: Duration,
    keep: &str,
) -> anyhow::Result<u64> {
    let removed: i64 = STREAM_REMOVE_IDLE_CONSUMERS
        .key(key)
        .arg(group)
        .arg(idle.as_millis() as u64)
        .arg(keep)
        .invoke_async(conn)
        .await
        .context("remove dead consumers")?;
    Ok(removed.max(0) as u64)
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerStats {
    pub name: String,
    pub pending: u64,
    pub idle_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    pub name: String,
    pub consumers: Vec<ConsumerStats>,
    /// Delivered to some consumer and not acked yet.
    pub pending: u64,
    pub last_delivered_id: String,
    /// Entries not yet delivered to the group. `None` when Redis cannot tell (after
    /// deletions or trimming it reports nil): never reported as 0.
    pub lag: Option<u64>,
    /// The oldest entry delivered and not acked.
    pub oldest_pending_id: Option<String>,
    pub oldest_pending_age_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamStats {
    pub key: String,
    pub length: u64,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    /// Entries ever added (a rate is the difference of two readings).
    pub entries_added: Option<u64>,
    /// The highest id ever deleted (`0-0` if none): a change says entries went away.
    pub max_deleted_id: Option<String>,
    pub groups: Vec<GroupStats>,
}

/// Statistics of one stream with its groups and their consumers (`XINFO STREAM`, `GROUPS`,
/// `CONSUMERS`, and the `XPENDING` summary of groups with pending entries), or `None` if the
/// key does not exist.
pub async fn stats(conn: &mut impl ConnectionLike, key: &str) -> anyhow::Result<Option<StreamStats>> {
    let summary: redis::RedisResult<StreamSummary> = redis::cmd("XINFO").arg("STREAM").arg(key).query_async(conn).await;
    let summary = match summary {
        Ok(summary) => summary,
        Err(err) => {
            // A missing key is a plain `ERR no such key`: its code is the generic `ERR`, and
            // only the message text would tell it apart. Ask Redis instead (only on this
            // failure path, so the usual case costs no extra round trip).
            if err.code() == Some("ERR") && !exists(conn, key).await? {
                return Ok(None);
            }
            return Err(anyhow::Error::new(err).context(format!("XINFO STREAM {key}")));
        }
    };
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await
        .context("XINFO GROUPS")?;
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut stats = StreamStats {
        key: key.to_owned(),
        length: summary.length,
        first_id: summary.first_id,
        last_id: summary.last_id,
        entries_added: summary.entries_added,
        max_deleted_id: summary.max_deleted_id,
        groups: Vec::new(),
    };
    for group in groups.groups {
        let oldest_pending_id = if group.pending > 0 {
            let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
                .arg(key)
                .arg(&group.name)
                .query_async(conn)
                .await
                .context("XPENDING summary")?;
            match pending {
                redis::streams::StreamPendingReply::Data(data) => Some(data.start_id),
                redis::streams::StreamPendingReply::Empty => None,
            }
        } else {
            None
        };
        let consumers: StreamInfoConsumersReply = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(key)
            .arg(&group.name)
            .query_async(conn)
            .await
            .context("XINFO CONSUMERS")?;
        stats.groups.push(GroupStats {
            oldest_pending_age_ms: oldest_pending_id
                .as_deref()
                .and_then(EntryId::parse)
                .map(|id| now_ms.saturating_sub(id.ms)),
            oldest_pending_id,
            consumers: consumers
                .consumers
                .into_iter()
                .map(|c| ConsumerStats {
                    name: c.name,
                    pending: c.pending as u64,
                    idle_ms: c.idle as u64,
                })
                .collect(),
            pending: group.pending as u64,
            last_delivered_id: group.last_delivered_id,
            lag: group.lag.map(|lag| lag as u64),
            name: group.name,
        });
    }
    Ok(Some(stats))
}

async fn exists(conn: &mut impl ConnectionLike, key: &str) -> anyhow::Result<bool> {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .context("EXISTS")?;
    Ok(n > 0)
}

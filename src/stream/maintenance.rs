//! Housekeeping of a stream: statistics (for metrics and `imticket-admin streams`), trimming
//! that never removes an entry some group has not acked (I6), and removal of dead consumers.

use std::time::Duration;

use anyhow::Context;
use redis::Value;
use redis::aio::ConnectionLike;
use serde::Serialize;

use super::EntryId;
use super::resp::{as_array, as_int, as_string};

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
    pub groups: Vec<GroupStats>,
}

/// Field `name` of a flat `[name, value, …]` reply.
fn field<'a>(flat: &'a [Value], name: &str) -> Option<&'a Value> {
    flat.chunks(2)
        .find(|pair| pair.first().and_then(as_string).as_deref() == Some(name))
        .and_then(|pair| pair.get(1))
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// Statistics of one stream, or `None` if the key does not exist.
pub async fn stream_stats(conn: &mut impl ConnectionLike, key: &str) -> anyhow::Result<Option<StreamStats>> {
    let info: redis::RedisResult<Value> = redis::cmd("XINFO").arg("STREAM").arg(key).query_async(conn).await;
    let info = match info {
        Ok(info) => as_array(info),
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
    let entry_id = |name: &str| {
        field(&info, name)
            .cloned()
            .map(as_array)
            .and_then(|e| e.first().and_then(as_string))
    };
    let mut stats = StreamStats {
        key: key.to_owned(),
        length: field(&info, "length").and_then(as_int).unwrap_or(0).max(0) as u64,
        first_id: entry_id("first-entry"),
        last_id: entry_id("last-entry"),
        groups: Vec::new(),
    };
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await
        .context("XINFO GROUPS")?;
    for group in as_array(groups) {
        let flat = as_array(group);
        let name = field(&flat, "name").and_then(as_string).unwrap_or_default();
        let pending = field(&flat, "pending").and_then(as_int).unwrap_or(0).max(0) as u64;
        let lag = match field(&flat, "lag") {
            Some(Value::Nil) | None => None,
            Some(v) => as_int(v).map(|n| n.max(0) as u64),
        };
        let mut oldest_pending_id = None;
        if pending > 0 {
            let summary: Value = redis::cmd("XPENDING")
                .arg(key)
                .arg(&name)
                .query_async(conn)
                .await
                .context("XPENDING summary")?;
            oldest_pending_id = as_array(summary).get(1).and_then(as_string);
        }
        let consumers: Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(key)
            .arg(&name)
            .query_async(conn)
            .await
            .context("XINFO CONSUMERS")?;
        let consumers = as_array(consumers)
            .into_iter()
            .map(|c| {
                let flat = as_array(c);
                ConsumerStats {
                    name: field(&flat, "name").and_then(as_string).unwrap_or_default(),
                    pending: field(&flat, "pending").and_then(as_int).unwrap_or(0).max(0) as u64,
                    idle_ms: field(&flat, "idle").and_then(as_int).unwrap_or(0).max(0) as u64,
                }
            })
            .collect();
        stats.groups.push(GroupStats {
            oldest_pending_age_ms: oldest_pending_id
                .as_deref()
                .and_then(EntryId::parse)
                .map(|id| now_ms().saturating_sub(id.ms)),
            oldest_pending_id,
            name,
            consumers,
            pending,
            last_delivered_id: field(&flat, "last-delivered-id")
                .and_then(as_string)
                .unwrap_or_default(),
            lag,
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

/// The lowest id some group still needs: its oldest pending entry, or else the first entry
/// after the last one delivered to it. Everything below the minimum over all groups has been
/// delivered to and acked by every group. `None` when the stream has no group.
pub fn safe_trim_point(stats: &StreamStats) -> Option<EntryId> {
    stats
        .groups
        .iter()
        .map(|g| {
            let delivered = EntryId::parse(&g.last_delivered_id).unwrap_or(EntryId { ms: 0, seq: 0 });
            let pending = g.oldest_pending_id.as_deref().and_then(EntryId::parse);
            match pending {
                Some(p) => p.min(delivered.next()),
                None => delivered.next(),
            }
        })
        .min()
}

/// Trims entries every group has acked (`XTRIM MINID`). Never `XADD MAXLEN`: on Redis 7 that
/// ignores consumer groups and can delete entries no one has processed (I6). Returns how
/// many entries were removed.
pub async fn trim(conn: &mut impl ConnectionLike, key: &str) -> anyhow::Result<u64> {
    let Some(stats) = stream_stats(conn, key).await? else {
        return Ok(0);
    };
    let Some(point) = safe_trim_point(&stats) else {
        return Ok(0);
    };
    let removed: i64 = redis::cmd("XTRIM")
        .arg(key)
        .arg("MINID")
        .arg(point.to_string())
        .query_async(conn)
        .await
        .context("XTRIM")?;
    Ok(removed.max(0) as u64)
}

/// Removes, atomically, every consumer of `group` that owns no pending entry and has been
/// idle for longer than `idle`, except `keep` (the caller). A consumer that owns pending
/// entries is never removed: deleting it would drop them from the pending list. A stream or
/// group that does not exist (yet: maintenance starts beside the consumer that creates them)
/// has no consumer to remove.
pub async fn remove_dead_consumers(
    conn: &mut impl ConnectionLike,
    key: &str,
    group: &str,
    idle: Duration,
    keep: &str,
) -> anyhow::Result<u64> {
    const SCRIPT: &str = r#"
        -- A missing key answers the generic `ERR no such key`: test for the key instead of
        -- matching that text. A missing group is told by its error code, the first word.
        if redis.call('EXISTS', KEYS[1]) == 0 then
            return 0
        end
        local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
        if type(consumers) == 'table' and consumers['err'] then
            local err = consumers['err']
            if string.match(err, '^%S+') == 'NOGROUP' then
                return 0
            end
            return redis.error_reply(err)
        end
        local removed = 0
        for _, consumer in ipairs(consumers) do
            local name, pending, idle
            for i = 1, #consumer, 2 do
                local k = consumer[i]
                if k == 'name' then name = consumer[i + 1]
                elseif k == 'pending' then pending = consumer[i + 1]
                elseif k == 'idle' then idle = consumer[i + 1] end
            end
            if pending == 0 and idle > tonumber(ARGV[2]) and name ~= ARGV[3] then
                redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
                removed = removed + 1
            end
        end
        return removed
    "#;
    let removed: i64 = redis::Script::new(SCRIPT)
        .key(key)
        .arg(group)
        .arg(idle.as_millis() as u64)
        .arg(keep)
        .invoke_async(conn)
        .await
        .context("remove dead consumers")?;
    Ok(removed.max(0) as u64)
}

/// Publishes a stream's statistics as gauges (`stream_label` is the logical name).
pub fn record_metrics(stream_label: &str, stats: &StreamStats) {
    metrics::gauge!("stream_length", "stream" => stream_label.to_owned()).set(stats.length as f64);
    for group in &stats.groups {
        let labels = [("stream", stream_label.to_owned()), ("group", group.name.clone())];
        metrics::gauge!("stream_group_pending", &labels).set(group.pending as f64);
        metrics::gauge!("stream_group_oldest_pending_age_seconds", &labels)
            .set(group.oldest_pending_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0));
        // Unknown lag is NaN plus `…_lag_known 0`, never a reassuring 0.
        metrics::gauge!("stream_group_lag", &labels).set(group.lag.map_or(f64::NAN, |lag| lag as f64));
        metrics::gauge!("stream_group_lag_known", &labels).set(if group.lag.is_some() { 1.0 } else { 0.0 });
        metrics::gauge!("stream_group_consumers", &labels).set(group.consumers.len() as f64);
    }
}

#[derive(Debug, Clone)]
pub struct MaintenanceSettings {
    pub interval: Duration,
    pub consumer_cleanup_idle: Duration,
}

/// What one consumer process looks after.
#[derive(Debug, Clone)]
pub struct Target {
    pub key: String,
    /// Logical stream name, for metrics and logs.
    pub label: String,
    pub group: String,
    /// This process's consumer, never removed by its own housekeeping.
    pub consumer: String,
}

/// The periodic housekeeping a consumer process runs beside its consumer: metrics, trimming
/// and dead-consumer removal. Several processes doing it at once is safe.
pub async fn run(
    redis: crate::infra::redis::Redis,
    keys: crate::keys::Keys,
    target: Target,
    settings: MaintenanceSettings,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Err(err) = maintain_once(&redis, &keys, &target, &settings).await {
            tracing::warn!(stream = %target.label, error = %format!("{err:#}"), "stream maintenance failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}

async fn maintain_once(
    redis: &crate::infra::redis::Redis,
    keys: &crate::keys::Keys,
    target: &Target,
    settings: &MaintenanceSettings,
) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    let Target {
        key,
        label,
        group,
        consumer,
    } = target;
    let removed = remove_dead_consumers(&mut conn, key, group, settings.consumer_cleanup_idle, consumer).await?;
    if removed > 0 {
        tracing::info!(stream = %label, group = %group, removed, "removed idle consumers without pending entries");
    }
    let trimmed = trim(&mut conn, key).await?;
    if trimmed > 0 {
        tracing::debug!(stream = %label, trimmed, "trimmed acknowledged entries");
        metrics::counter!("stream_trimmed_entries_total", "stream" => label.clone()).increment(trimmed);
    }
    if let Some(stats) = stream_stats(&mut conn, key).await? {
        record_metrics(label, &stats);
    }
    let dead_letters: u64 = redis::cmd("XLEN")
        .arg(keys.dead_letter())
        .query_async(&mut conn)
        .await
        .context("XLEN")?;
    metrics::gauge!("stream_dead_letter_length").set(dead_letters as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(last: &str, oldest_pending: Option<&str>) -> GroupStats {
        GroupStats {
            name: "g".into(),
            consumers: vec![],
            pending: u64::from(oldest_pending.is_some()),
            last_delivered_id: last.into(),
            lag: None,
            oldest_pending_id: oldest_pending.map(str::to_owned),
            oldest_pending_age_ms: None,
        }
    }

    fn stats(groups: Vec<GroupStats>) -> StreamStats {
        StreamStats {
            key: "k".into(),
            length: 10,
            first_id: None,
            last_id: None,
            groups,
        }
    }

    #[test]
    fn trim_point_is_the_slowest_groups_first_unacked_entry() {
        assert_eq!(safe_trim_point(&stats(vec![])), None);
        let fast = group("100-5", None);
        let slow = group("100-5", Some("50-0"));
        let behind = group("20-1", None);
        assert_eq!(
            safe_trim_point(&stats(vec![fast.clone()])).unwrap().to_string(),
            "100-6"
        );
        assert_eq!(
            safe_trim_point(&stats(vec![fast.clone(), slow])).unwrap().to_string(),
            "50-0"
        );
        assert_eq!(safe_trim_point(&stats(vec![fast, behind])).unwrap().to_string(), "20-2");
        // A group that never read anything keeps the whole stream.
        assert_eq!(
            safe_trim_point(&stats(vec![group("0-0", None)])).unwrap().to_string(),
            "0-1"
        );
    }
}

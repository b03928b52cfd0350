//! Housekeeping of a stream: statistics (for metrics and `imticket-admin streams`), trimming
//! that never removes an entry some group has not acked (I6), and removal of dead consumers.

use crate::infra::redis::ConnectionLike;

use crate::config::MaintenanceSettings;
use crate::infra::redis::protocol::EntryId;
use crate::infra::redis::streams::{self, StreamStats, remove_dead_consumers};

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
    let Some(stats) = streams::stats(conn, key).await? else {
        return Ok(0);
    };
    let Some(point) = safe_trim_point(&stats) else {
        return Ok(0);
    };
    streams::trim_below(conn, key, point).await
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
    keys: crate::infra::redis::keys::Keys,
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
    keys: &crate::infra::redis::keys::Keys,
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
    if let Some(stats) = streams::stats(&mut conn, key).await? {
        record_metrics(label, &stats);
    }
    let dead_letters = streams::len(&mut conn, &keys.dead_letter()).await?;
    metrics::gauge!("stream_dead_letter_length").set(dead_letters as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::redis::streams::GroupStats;

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

//! Housekeeping of a stream: statistics (for metrics and `imticket-admin streams`), the
//! declared groups created, trimming that never removes an entry a pinning group has not acked
//! (I6, [`super::groups`]), and removal of dead consumers.

use std::time::Duration;

use super::groups::{self, Assessment};
use crate::config::MaintenanceSettings;
use crate::events::groups::Registry;
use crate::infra::redis::ConnectionLike;
use crate::infra::redis::protocol::EntryId;
use crate::infra::redis::streams::{self, StreamStats, remove_dead_consumers};

/// Trims entries every group has acked (`XTRIM MINID`), every group counting as pinning: the
/// rule for a key outside the registry. Never `XADD MAXLEN`: on Redis 7 that ignores consumer
/// groups and can delete entries no one has processed (I6). Returns how many entries were
/// removed.
pub async fn trim(conn: &mut impl ConnectionLike, key: &str) -> anyhow::Result<u64> {
    let Some(stats) = streams::stats(conn, key).await? else {
        return Ok(0);
    };
    let seen = vec![None; stats.groups.len()];
    let assessment = groups::assess(&stats, None, &Registry::default(), &seen, 0, Duration::MAX);
    trim_to(conn, key, &assessment).await
}

/// The declared groups of `key`'s stream created if missing, then the stream trimmed at the
/// trim point its groups allow (`registry`: which are retired; `abandon_after`: when an idle
/// group that pins until abandoned stops). Returns how many entries went, and the assessment.
pub async fn trim_declared(
    conn: &mut impl ConnectionLike,
    keys: &crate::infra::redis::keys::Keys,
    registry: &Registry,
    abandon_after: Duration,
    key: &str,
) -> anyhow::Result<Option<(u64, Assessment)>> {
    if let Some(stream) = keys.stream_of(key) {
        groups::ensure(conn, keys, registry, stream, key).await?;
    }
    let Some((_, assessment)) = groups::read_and_assess(conn, keys, registry, abandon_after, key).await? else {
        return Ok(None);
    };
    let trimmed = trim_to(conn, key, &assessment).await?;
    Ok(Some((trimmed, assessment)))
}

/// Trims below the assessment's trim point, if it has one.
async fn trim_to(conn: &mut impl ConnectionLike, key: &str, assessment: &Assessment) -> anyhow::Result<u64> {
    match assessment.trim_point.as_deref().and_then(EntryId::parse) {
        Some(point) => streams::trim_below(conn, key, point).await,
        None => Ok(0),
    }
}

/// Publishes which group holds a stream's trim point and which are abandoned, as gauges.
pub fn record_pinning(stream_label: &str, assessment: &Assessment) {
    for standing in &assessment.groups {
        let labels = [("stream", stream_label.to_owned()), ("group", standing.group.clone())];
        let holds = assessment.held_by.as_deref() == Some(standing.group.as_str());
        metrics::gauge!("stream_group_pins_trim", &labels).set(if holds { 1.0 } else { 0.0 });
        metrics::gauge!("stream_group_abandoned", &labels).set(if standing.abandoned { 1.0 } else { 0.0 });
    }
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
    // This group is alive; the declared groups of the stream exist before anything is trimmed.
    let now = chrono::Utc::now().timestamp_millis();
    streams::note_group_seen(&mut conn, &keys.groups_seen(), key, group, now, false).await?;
    let assessed = trim_declared(&mut conn, keys, &settings.groups, settings.group_abandon_after, key).await?;
    if let Some((trimmed, assessment)) = &assessed {
        let trimmed = *trimmed;
        if trimmed > 0 {
            tracing::debug!(stream = %label, trimmed, held_by = ?assessment.held_by, "trimmed acknowledged entries");
            metrics::counter!("stream_trimmed_entries_total", "stream" => label.clone()).increment(trimmed);
        }
        record_pinning(label, assessment);
    }
    if let Some(stats) = streams::stats(&mut conn, key).await? {
        record_metrics(label, &stats);
    }
    let dead_letters = streams::len(&mut conn, &keys.dead_letter()).await?;
    metrics::gauge!("stream_dead_letter_length").set(dead_letters as f64);
    Ok(())
}

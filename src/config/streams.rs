//! The event backbone: how consumers read, retry and give up, how streams are looked after,
//! and how the outbox is relayed and pruned. [`StreamSettings`] is what the environment says;
//! it builds the settings each part of the runtime takes.

use std::time::Duration;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// `IMTICKET_STREAM_MAX_DELIVERIES`: deliveries before an entry is dead-lettered.
    pub max_deliveries: u32,
    /// `IMTICKET_STREAM_CLAIM_IDLE_MS`: idle time before a pending entry is reclaimed.
    pub claim_idle: Duration,
    /// `IMTICKET_STREAM_BATCH_SIZE`: entries read (and reclaimed) per round.
    pub batch_size: usize,
    /// `IMTICKET_STREAM_CONCURRENCY`: handler invocations of one batch running at once.
    pub concurrency: usize,
    /// `IMTICKET_STREAM_BLOCK_MS`: how long one XREADGROUP blocks; bounds shutdown latency.
    pub block: Duration,
    /// `IMTICKET_STREAM_BACKOFF_CAP_MS`: upper bound of the reclaim back-off
    /// `claim_idle × 2^(deliveries−1)`.
    pub backoff_cap: Duration,
    /// `IMTICKET_STREAM_MAINTENANCE_SECONDS`: how often each consumer process trims its stream
    /// and cleans up dead consumers (and prunes `processed_events`).
    pub maintenance_interval: Duration,
    /// `IMTICKET_STREAM_CONSUMER_CLEANUP_IDLE_SECONDS`: a consumer idle this long that owns no
    /// pending entry is removed from its group.
    pub consumer_cleanup_idle: Duration,
    /// `IMTICKET_OUTBOX_BATCH_SIZE`: outbox rows published per relay round.
    pub outbox_batch_size: usize,
    /// `IMTICKET_OUTBOX_RETENTION_SECONDS`: published outbox rows are deleted after this long.
    pub outbox_retention: Duration,
    /// `IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS`: `processed_events` rows are deleted after
    /// this long: longer than any redelivery of the same entry, and than an operator may wait
    /// to replay a dead letter (docs/event-backbone.md). Checked at start against the
    /// redelivery window.
    pub processed_events_retention: Duration,
    /// `IMTICKET_STREAM_GROUP_ABANDON_AFTER_SECONDS`: a group that pins until abandoned
    /// ([`crate::events::groups::Pinning::UntilAbandoned`]) stops holding its stream's trim
    /// point once no consumer of it has been seen for this long.
    pub group_abandon_after: Duration,
    /// `IMTICKET_STREAM_GROUPS_RETIRED`: groups declared retired (comma-separated, each
    /// `group` or `stream:group`): never created, never holding a trim point.
    pub groups: crate::events::groups::Registry,
}

impl StreamSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_deliveries: env.number("IMTICKET_STREAM_MAX_DELIVERIES", 5, 1..=1000)?,
            claim_idle: claim_idle(env)?,
            batch_size: env.number("IMTICKET_STREAM_BATCH_SIZE", 500, 1..=10_000)?,
            concurrency: env.number("IMTICKET_STREAM_CONCURRENCY", 4, 1..=256)?,
            block: env.millis("IMTICKET_STREAM_BLOCK_MS", 1000, 10..=30_000)?,
            backoff_cap: env.millis("IMTICKET_STREAM_BACKOFF_CAP_MS", 600_000, 100..=86_400_000)?,
            maintenance_interval: env.seconds("IMTICKET_STREAM_MAINTENANCE_SECONDS", 30, 1..=86_400)?,
            consumer_cleanup_idle: env.seconds("IMTICKET_STREAM_CONSUMER_CLEANUP_IDLE_SECONDS", 3600, 1..=604_800)?,
            outbox_batch_size: env.number("IMTICKET_OUTBOX_BATCH_SIZE", 1000, 1..=10_000)?,
            outbox_retention: env.seconds("IMTICKET_OUTBOX_RETENTION_SECONDS", 86_400, 0..=31_536_000)?,
            processed_events_retention: env.seconds(
                "IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS",
                604_800,
                60..=315_360_000,
            )?,
            group_abandon_after: group_abandon_after(env)?,
            groups: retired_groups(env)?,
        })
        .and_then(Self::checked)
    }

    /// Pruning an event's record while its entry can still be redelivered would let the
    /// redelivery take effect twice. The window is the consumer's own arithmetic
    /// (`crate::retry`, which [`ConsumerSettings::backoff`] uses), not a second copy of it.
    fn checked(self) -> Result<Self, ConfigError> {
        let window = self.redelivery_window();
        if self.processed_events_retention <= window {
            return Err(ConfigError::new(
                "IMTICKET_PROCESSED_EVENTS_RETENTION_SECONDS",
                format!(
                    "must be longer than the redelivery window of {} s (the reclaim back-offs of \
                     IMTICKET_STREAM_MAX_DELIVERIES deliveries, from IMTICKET_STREAM_CLAIM_IDLE_MS \
                     and IMTICKET_STREAM_BACKOFF_CAP_MS)",
                    window.as_secs()
                ),
            ));
        }
        Ok(self)
    }

    /// How long after its first delivery an entry can still be delivered again.
    pub fn redelivery_window(&self) -> Duration {
        crate::retry::redelivery_window(self.claim_idle, self.backoff_cap, self.max_deliveries)
    }

    /// What each consumer runs with.
    pub fn consumer(&self) -> ConsumerSettings {
        ConsumerSettings {
            batch_size: self.batch_size,
            concurrency: self.concurrency,
            block: self.block,
            claim_idle: self.claim_idle,
            backoff_cap: self.backoff_cap,
            max_deliveries: self.max_deliveries,
            reclaim_interval: (self.claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)),
        }
    }

    /// What each consumer process's stream housekeeping runs with.
    pub fn maintenance(&self) -> MaintenanceSettings {
        MaintenanceSettings {
            interval: self.maintenance_interval,
            consumer_cleanup_idle: self.consumer_cleanup_idle,
            group_abandon_after: self.group_abandon_after,
            groups: self.groups.clone(),
        }
    }

    /// What the `outbox-relay` role runs with.
    pub fn relay(&self) -> RelaySettings {
        RelaySettings {
            batch_size: self.outbox_batch_size,
            idle_wait: Duration::from_millis(200),
            retention: self.outbox_retention,
            housekeeping_interval: self.maintenance_interval,
            groups: self.groups.clone(),
        }
    }
}

/// `IMTICKET_STREAM_GROUP_ABANDON_AFTER_SECONDS`, also read by the operator CLI (`streams`).
pub(crate) fn group_abandon_after(env: &Env) -> Result<Duration, ConfigError> {
    env.seconds("IMTICKET_STREAM_GROUP_ABANDON_AFTER_SECONDS", 86_400, 1..=31_536_000)
}

/// `IMTICKET_STREAM_GROUPS_RETIRED` (every name must be a declared group), also read by the
/// operator CLI (`streams`).
pub(crate) fn retired_groups(env: &Env) -> Result<crate::events::groups::Registry, ConfigError> {
    const NAME: &str = "IMTICKET_STREAM_GROUPS_RETIRED";
    let names: Vec<String> = env
        .get(NAME)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = names
        .iter()
        .find(|n| !crate::events::groups::Registry::names_a_group(n))
    {
        return Err(ConfigError::new(
            NAME,
            format!("{unknown:?} is not a declared group (`group` or `stream:group`, see imticket-admin streams)"),
        ));
    }
    Ok(crate::events::groups::Registry::new(names))
}

/// `IMTICKET_STREAM_CLAIM_IDLE_MS`, also read by the operator CLI (`audit`).
pub(crate) fn claim_idle(env: &Env) -> Result<Duration, ConfigError> {
    env.millis("IMTICKET_STREAM_CLAIM_IDLE_MS", 30_000, 100..=86_400_000)
}

/// How a consumer reads, retries and gives up.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub batch_size: usize,
    pub concurrency: usize,
    pub block: Duration,
    /// A pending entry becomes claimable after `claim_idle × 2^(deliveries−1)`, capped.
    pub claim_idle: Duration,
    pub backoff_cap: Duration,
    pub max_deliveries: u32,
    /// How often the pending list is scanned for claimable entries.
    pub reclaim_interval: Duration,
}

impl ConsumerSettings {
    /// How long after its first delivery an entry can still be delivered again
    /// ([`crate::retry::redelivery_window`]).
    pub fn redelivery_window(&self) -> Duration {
        crate::retry::redelivery_window(self.claim_idle, self.backoff_cap, self.max_deliveries)
    }

    /// How long an entry delivered `deliveries` times must sit idle before it is reclaimed.
    pub fn backoff(&self, deliveries: u32) -> Duration {
        crate::retry::reclaim_backoff(self.claim_idle, self.backoff_cap, deliveries)
    }
}

/// The periodic housekeeping beside each consumer: metrics, trimming, dead-consumer removal.
#[derive(Debug, Clone)]
pub struct MaintenanceSettings {
    pub interval: Duration,
    pub consumer_cleanup_idle: Duration,
    pub group_abandon_after: Duration,
    pub groups: crate::events::groups::Registry,
}

/// The `outbox-relay` role.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub batch_size: usize,
    /// Pause between rounds that found nothing to publish.
    pub idle_wait: Duration,
    pub retention: Duration,
    pub housekeeping_interval: Duration,
    /// Which groups must process every event (a new Redis gets again what they have not).
    pub groups: crate::events::groups::Registry,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(claim_idle_ms: u64, cap_ms: u64) -> ConsumerSettings {
        ConsumerSettings {
            batch_size: 10,
            concurrency: 1,
            block: Duration::from_millis(10),
            claim_idle: Duration::from_millis(claim_idle_ms),
            backoff_cap: Duration::from_millis(cap_ms),
            max_deliveries: 5,
            reclaim_interval: Duration::ZERO,
        }
    }

    #[test]
    fn backoff_doubles_per_delivery_up_to_the_cap() {
        let s = settings(1000, 5000);
        let waits: Vec<u128> = (1..=6).map(|n| s.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(s.backoff(u32::MAX).as_millis(), 5000);
        // A cap below claim_idle never shortens the first wait.
        assert_eq!(settings(1000, 10).backoff(1).as_millis(), 1000);
    }
}

//! How a consumer reads, retries and gives up.

use std::time::Duration;

use crate::config::Config;

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
    pub fn from_config(config: &Config) -> Self {
        Self {
            batch_size: config.stream.batch_size,
            concurrency: config.stream.concurrency,
            block: config.stream.block,
            claim_idle: config.stream_claim_idle,
            backoff_cap: config.stream.backoff_cap,
            max_deliveries: config.stream_max_deliveries,
            reclaim_interval: (config.stream_claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)),
        }
    }

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

//! Back-off arithmetic: the pause of a loop whose last rounds failed (a consumer, the relay,
//! the invalidation follower), and the reclaim back-off of a stream entry. Pure functions at
//! the bottom of the house, so the configuration check and the consumer share one formula.

use std::time::Duration;

/// The reclaim back-off of an entry delivered `deliveries` times:
/// `claim_idle × 2^(deliveries−1)`, capped at `cap` (never below `claim_idle`).
pub fn reclaim_backoff(claim_idle: Duration, cap: Duration, deliveries: u32) -> Duration {
    let factor = 2u32.saturating_pow(deliveries.saturating_sub(1).min(30));
    claim_idle.saturating_mul(factor).min(cap.max(claim_idle))
}

/// How long after its first delivery an entry can still be delivered again: the sum of the
/// back-offs of `max_deliveries` deliveries. One more back-off than the handler can run after
/// (the last reclaim dead-letters without calling it), which leaves a margin for reclaim
/// intervals and handler time. Records in `processed_events` must outlive it.
pub fn redelivery_window(claim_idle: Duration, cap: Duration, max_deliveries: u32) -> Duration {
    (1..=max_deliveries)
        .map(|n| reclaim_backoff(claim_idle, cap, n))
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// Exponential back-off with jitter for a loop whose last `failures` rounds failed:
/// 100 ms doubling to 10 s, each ±50%, so many workers do not retry in lockstep.
pub fn retry_delay(failures: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)));
    base.min(Duration::from_secs(10)).mul_f64(rand::random_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_bounded() {
        for failures in 1..40 {
            let d = retry_delay(failures);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_secs(15),
                "{failures}: {d:?}"
            );
        }
    }
}

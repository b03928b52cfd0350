//! The pause of a loop whose last rounds failed (a consumer, the relay, the invalidation
//! follower), shared so they all back off alike.

use std::time::Duration;

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

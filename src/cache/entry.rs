//! What the cache keeps and for how long.

use std::sync::Arc;
use std::time::Duration;

/// A JSON document ready to be sent as a response body.
pub type JsonBody = Arc<[u8]>;

/// Time to live in Redis: `base ± jitter`; `near`: also kept in each process's [`NearCache`].
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    pub base: Duration,
    pub jitter: Duration,
    pub near: bool,
}

impl Ttl {
    pub(crate) fn pick(self) -> Duration {
        let jitter = self.jitter.as_millis() as i64;
        let offset = if jitter > 0 {
            rand::random_range(-jitter..=jitter)
        } else {
            0
        };
        Duration::from_millis((self.base.as_millis() as i64 + offset).max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ttl_jitter_stays_in_bounds() {
        let ttl = Ttl {
            base: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
            near: false,
        };
        for _ in 0..1000 {
            let t = ttl.pick();
            assert!(t >= Duration::from_secs(270) && t <= Duration::from_secs(330), "{t:?}");
        }
    }
}

//! The cache's home: look-aside caching of whole JSON responses in Redis
//! ([`LookAside`]), a near copy inside each API process ([`NearCache`]), the Redis side with
//! its generation counters ([`CacheStore`], in `infra::redis`), and the invalidation channel
//! ([`follow_invalidations`]). Use cases name entries with [`crate::infra::redis::keys::CacheEntry`].
//!
//! - A miss loads from PostgreSQL once per key and process however many requests miss at the
//!   same time (single-flight); the others wait for that load.
//! - Entries live for a TTL with random jitter, so keys written together do not expire
//!   together.
//! - Cache errors are logged and counted, never returned: with Redis down, reads go to
//!   PostgreSQL. After an error the cache is bypassed for a second, so an outage does not
//!   add a Redis timeout to every request.
//! - Caches marked `near` are also kept for a short time in each API process ([`NearCache`]),
//!   in front of Redis: the hottest page of an on-sale is then served from memory.
//!   Invalidations reach every process through Redis pub/sub; the short local TTL bounds how
//!   stale a copy can get if one is missed.

mod invalidations;
mod look_aside;
mod near;

use std::sync::Arc;
use std::time::Duration;

pub use crate::infra::redis::cache_store::{CacheStore, Generation};
pub use invalidations::follow_invalidations;
pub use look_aside::LookAside;
pub use near::NearCache;

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

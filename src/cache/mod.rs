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

mod entry;
mod invalidations;
mod look_aside;
mod near;

pub use crate::infra::redis::cache_store::{CacheStore, Generation};
pub use entry::{JsonBody, Ttl};
pub use invalidations::follow_invalidations;
pub use look_aside::LookAside;
pub use near::NearCache;

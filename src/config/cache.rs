//! Caching: the API's near copy of concert details, and how stale a seat map may get.

use std::time::Duration;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `IMTICKET_CACHE_NEAR_TTL_MS`: how long an API process keeps its own copy of a
    /// concert's details (zero: no near cache).
    pub near_ttl: Duration,
    /// `IMTICKET_SEAT_STATES_TTL_SECONDS`: how long a schedule's seat states live in Redis
    /// before they are rebuilt from PostgreSQL, the bound on how long a lost write-through
    /// can show in the seat map.
    pub seat_states_ttl: Duration,
}

impl CacheSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            near_ttl: env.millis("IMTICKET_CACHE_NEAR_TTL_MS", 1000, 0..=60_000)?,
            seat_states_ttl: env.seconds("IMTICKET_SEAT_STATES_TTL_SECONDS", 10, 1..=3600)?,
        })
    }
}

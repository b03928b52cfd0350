//! The waiting room's admission: capacity, rate, slot length.

use std::time::Duration;

use super::env::{ConfigError, Env};
use crate::domain::queue::Admission;

#[derive(Debug, Clone)]
pub struct WaitingRoomSettings {
    /// `IMTICKET_QUEUE_ACTIVE_CAPACITY`: users active at once per concert.
    pub active_capacity: u32,
    /// `IMTICKET_QUEUE_PROMOTE_PER_SECOND`: admissions per second, over every promoter.
    pub promote_per_second: u32,
    /// `IMTICKET_QUEUE_ACTIVE_TTL_SECONDS`: how long an admitted user stays active.
    pub active_ttl: Duration,
    /// `IMTICKET_SSE_MAX_STREAMS`: `GET /queue/events` streams one API process keeps open.
    pub sse_max_streams: usize,
    /// `IMTICKET_SSE_KEEPALIVE_SECONDS`: a comment on an idle stream this often.
    pub sse_keepalive: Duration,
    /// `IMTICKET_SSE_MAX_SECONDS`: a stream ends after this long (the client reconnects), so
    /// long-lived connections spread over the instances a scale-out adds.
    pub sse_max_lifetime: Duration,
}

impl WaitingRoomSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            active_capacity: env.number("IMTICKET_QUEUE_ACTIVE_CAPACITY", 1000, 1..=10_000_000)?,
            promote_per_second: env.number("IMTICKET_QUEUE_PROMOTE_PER_SECOND", 100, 1..=1_000_000)?,
            active_ttl: env.seconds("IMTICKET_QUEUE_ACTIVE_TTL_SECONDS", 600, 1..=86_400)?,
            sse_max_streams: env.number("IMTICKET_SSE_MAX_STREAMS", 20_000, 1..=1_000_000)?,
            sse_keepalive: env.seconds("IMTICKET_SSE_KEEPALIVE_SECONDS", 15, 1..=300)?,
            sse_max_lifetime: env.seconds("IMTICKET_SSE_MAX_SECONDS", 600, 1..=86_400)?,
        })
    }

    /// What the admission scripts are given.
    pub fn admission(&self) -> Admission {
        Admission {
            capacity: self.active_capacity,
            per_second: self.promote_per_second,
            active_ttl_ms: self.active_ttl.as_millis() as u64,
        }
    }
}

//! The handles every use case works with.

use std::sync::Arc;

use crate::infra::postgres::Db;
use serde::Serialize;

use super::error::AppError;
use super::kept::{SaleWindows, ScheduleConcerts, SeatLayouts, SeatPictures};
use super::password::PasswordHasher;
use super::rate_limits::RateLimiter;
use super::tokens::TokenService;
use crate::cache::{JsonBody, LookAside};
use crate::config::Config;
use crate::infra::publisher::Publisher;
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;

/// The handles use cases work with. Built once per process by the composition root
/// ([`crate::root::deps`]) and cloned cheaply from there; nothing here opens a connection.
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub db: Db,
    pub redis: Redis,
    pub keys: Keys,
    pub tokens: Arc<TokenService>,
    pub hasher: PasswordHasher,
    pub cache: LookAside,
    pub outbox: Publisher,
    /// The rate limits (their decisions live in Redis).
    pub limits: Arc<RateLimiter>,
    /// When each concert's sale opens, kept per process (joins need it).
    pub sale_windows: Arc<SaleWindows>,
    /// Which concert each schedule belongs to, kept per process (holds need it).
    pub schedule_concerts: Arc<ScheduleConcerts>,
    /// Seat-map layouts, kept per process (reads and write-throughs need them).
    pub seat_layouts: Arc<SeatLayouts>,
    /// Where each schedule's seats are drawn, kept per process (`seats.svg` needs it).
    pub seat_pictures: Arc<SeatPictures>,
    /// The process's open `GET /queue/events` streams.
    pub queue_streams: Arc<super::queue_events::QueueStreams>,
    /// The HTTP client webhooks are delivered with (and endpoints checked by).
    pub webhooks: crate::infra::webhooks::WebhookClient,
    /// The SMTP client mail is sent with (off without `IMTICKET_SMTP_URL`).
    pub mailer: crate::infra::mail::Mailer,
    /// The operator console's readings (rates) and dead-letter index, per process.
    pub console: Arc<super::console::ConsoleState>,
}

impl Deps {
    /// A copy whose Redis connection is its own, made on the runtime of the thread that first
    /// uses it; everything else (pool, single-flight, bypass) stays shared. The API calls it
    /// once per HTTP worker thread.
    pub fn for_this_thread(&self) -> Self {
        let redis = self.redis.own_connection();
        let cache = self.cache.with_store(self.cache.store().with_redis(redis.clone()));
        let outbox = self.outbox.with_redis(redis.clone());
        let limits = Arc::new(self.limits.with_redis(redis.clone()));
        Self {
            redis,
            cache,
            outbox,
            limits,
            ..self.clone()
        }
    }
}

/// A response body as JSON bytes, for the cache.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<JsonBody, AppError> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("serialize")))
}

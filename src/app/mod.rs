//! Use cases, one file each, grouped by what a user does: `auth` (sign up, log in),
//! `concerts` (concerts and schedules), `availability` (is a concert sold out), `seat_map`,
//! `seat_creation` (bulk seats as a job), `waiting_room` (join, status, leave, admission, the
//! booking gate), `warm_up` (the cache at start). Each owns its transaction and returns
//! [`AppError`] with a stable code. Use cases never see the stream runtime: they write typed
//! events ([`crate::events`]) with [`crate::infra::postgres::outbox::append`] and publish them after
//! commit.

pub mod auth;
pub mod availability;
pub mod concerts;
pub mod confirmation;
pub mod error;
pub mod expiry;
pub mod holds;
pub mod idempotency;
pub mod password;
pub mod payments;
pub mod seat_creation;
pub mod seat_map;
pub mod tokens;
pub mod waiting_room;
pub mod wallet;
pub mod warm_up;

use std::sync::Arc;

use serde::Serialize;
use sqlx::PgPool;

pub use error::{AppError, ErrorKind};

use crate::cache::{JsonBody, LookAside};
use crate::config::Config;
use crate::infra::publisher::Publisher;
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;
use password::PasswordHasher;
use tokens::TokenService;

/// The handles use cases work with. Built once per process by the composition root
/// ([`crate::root::deps`]) and cloned cheaply from there; nothing here opens a connection.
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: Redis,
    pub keys: Keys,
    pub tokens: Arc<TokenService>,
    pub hasher: PasswordHasher,
    pub cache: LookAside,
    pub outbox: Publisher,
    /// When each concert's sale opens, kept per process (joins need it).
    pub sale_windows: Arc<waiting_room::SaleWindows>,
    /// Which concert each schedule belongs to, kept per process (holds need it).
    pub schedule_concerts: Arc<holds::ScheduleConcerts>,
    /// Seat-map layouts, kept per process (reads and write-throughs need them).
    pub seat_maps: Arc<seat_map::SeatMaps>,
}

impl Deps {
    /// A copy whose Redis connection is its own, made on the runtime of the thread that first
    /// uses it; everything else (pool, single-flight, bypass) stays shared. The API calls it
    /// once per HTTP worker thread.
    pub fn for_this_thread(&self) -> Self {
        let redis = self.redis.own_connection();
        let cache = self.cache.with_store(self.cache.store().with_redis(redis.clone()));
        let outbox = self.outbox.with_redis(redis.clone());
        Self {
            redis,
            cache,
            outbox,
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

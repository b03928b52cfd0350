//! Use cases. Each owns its transaction and returns [`AppError`] with a stable code.

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod error;
pub mod password;
pub mod tokens;

use std::sync::Arc;

use sqlx::PgPool;

pub use error::{AppError, ErrorKind};

use crate::config::Config;
use crate::infra::cache::CacheStore;
use crate::infra::redis::Redis;
use crate::stream::Keys;
use cache::LookAside;
use password::PasswordHasher;
use tokens::TokenService;

/// The dependencies every use case may need, built once per process and shared.
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: Redis,
    pub tokens: Arc<TokenService>,
    pub hasher: PasswordHasher,
    pub cache: LookAside,
    pub keys: Keys,
}

impl Deps {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let db = crate::infra::db::pool(&config)?;
        let redis = Redis::new(&config.redis_url, config.redis_timeout)?;
        let tokens = Arc::new(TokenService::new(&config.jwt_secret, config.jwt_ttl));
        let hasher = PasswordHasher::for_this_machine()?;
        let cache = LookAside::new(CacheStore::new(redis.clone(), &config.redis_key_prefix));
        let keys = Keys::new(config.redis_key_prefix.clone());
        Ok(Self {
            config: Arc::new(config),
            db,
            redis,
            tokens,
            hasher,
            cache,
            keys,
        })
    }

    /// A copy whose Redis connection is its own, made on the runtime of the thread that first
    /// uses it; everything else (pool, single-flight, bypass) stays shared. The API calls it
    /// once per HTTP worker thread.
    pub fn for_this_thread(&self) -> Self {
        let redis = self.redis.own_connection();
        let cache = self.cache.with_store(self.cache.store().with_redis(redis.clone()));
        Self {
            redis,
            cache,
            ..self.clone()
        }
    }
}

//! The composition root: every long-lived dependency of a process is built here, once, from
//! the typed [`Config`], and handed down. The API ([`crate::startup`]), the worker
//! ([`crate::worker`]), `imticket-admin`, `imticket-bench` and the tests all start here.

use std::sync::Arc;

use crate::app::Deps;
use crate::app::password::PasswordHasher;
use crate::app::rate_limits::RateLimiter;
use crate::app::tokens::TokenService;
use crate::cache::{CacheStore, LookAside, NearCache};
use crate::config::Config;
use crate::infra::publisher::Publisher;
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;
use crate::stream::StreamRuntime;

/// Concert details kept per API process at most (each a few kilobytes).
const NEAR_CAPACITY: usize = 10_000;

/// The use cases' dependencies. Opens no connection: the pool and Redis connect on first use,
/// so a process starts while a dependency is down and reports itself not ready.
pub fn deps(config: Config) -> anyhow::Result<Deps> {
    let db = crate::infra::postgres::pool(&config.database)?;
    let redis = Redis::new(&config.redis)?;
    let keys = Keys::new(config.redis.key_prefix.clone()).with_partitions(config.redis.stream_partitions);
    // Only the API signs or verifies tokens and it refuses to start without `JWT_SECRET`
    // (`Application::build`); a worker without one gets a key of its own that nothing shares.
    let secret = match config.auth.signing_secret() {
        Ok(secret) => secret.clone(),
        Err(_) => secrecy::SecretString::from(uuid::Uuid::new_v4().simple().to_string().repeat(2)),
    };
    let tokens = Arc::new(TokenService::new(&secret, config.auth.jwt_ttl));
    let hasher = PasswordHasher::for_this_machine()?;
    let cache = LookAside::new(CacheStore::new(redis.clone(), keys.clone()));
    let outbox = Publisher::new(db.clone(), redis.clone(), keys.clone());
    let limits = Arc::new(RateLimiter::new(
        config.rate_limits.clone(),
        redis.clone(),
        keys.clone(),
    ));
    let queue_streams = crate::app::queue_events::QueueStreams::new(config.waiting_room.sse_max_streams);
    let webhooks =
        crate::infra::webhooks::WebhookClient::new(config.notifications.timeout, config.notifications.allow_private)?;
    let mailer = crate::infra::mail::Mailer::new(
        config.notifications.smtp_url.as_ref(),
        &config.notifications.mail_from,
        config.notifications.smtp_timeout,
    )?;
    Ok(Deps {
        config: Arc::new(config),
        db,
        redis,
        keys,
        tokens,
        hasher,
        cache,
        outbox,
        limits,
        sale_windows: Arc::default(),
        schedule_concerts: Arc::default(),
        seat_layouts: Arc::default(),
        seat_pictures: Arc::default(),
        queue_streams,
        console: Default::default(),
        webhooks,
        mailer,
    })
}

/// As [`deps`], with the near cache of an API process in front of Redis (unless its TTL is 0).
pub fn api_deps(config: Config) -> anyhow::Result<Deps> {
    let near_ttl = config.cache.near_ttl;
    let mut deps = deps(config)?;
    if !near_ttl.is_zero() {
        deps.cache = deps.cache.with_near(Arc::new(NearCache::new(near_ttl, NEAR_CAPACITY)));
    }
    Ok(deps)
}

/// The stream runtime of a worker process: consumers and their housekeeping, tuned by the
/// configuration.
pub fn stream_runtime(deps: &Deps) -> StreamRuntime {
    StreamRuntime::new(deps.redis.clone(), deps.keys.clone(), &deps.config.streams)
}

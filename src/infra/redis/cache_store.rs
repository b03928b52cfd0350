//! The Redis side of the look-aside cache: opaque byte values with a time to live, each with
//! a generation counter, and deletions announced on the invalidation channel.

use std::time::Duration;

use anyhow::Context;

use super::Redis;
use super::keys::Keys;
use super::scripts::CACHE_SET_IF_GENERATION;

#[derive(Clone)]
pub struct CacheStore {
    redis: Redis,
    keys: Keys,
}

impl CacheStore {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// The same store over another Redis handle.
    pub fn with_redis(&self, redis: Redis) -> Self {
        Self {
            redis,
            keys: self.keys.clone(),
        }
    }

    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Pub/sub channel of invalidations: each message is a JSON array of cache names.
    pub fn invalidation_channel(&self) -> String {
        self.keys.cache_invalidations()
    }

    /// The value of `name`, if cached, and its generation, read together: a value loaded
    /// after this read may be stored only under the same generation ([`Self::set_if`]).
    pub async fn get(&self, name: &str) -> anyhow::Result<(Option<Vec<u8>>, Generation)> {
        let mut conn = self.redis.connection().await?;
        let (value, generation): (Option<Vec<u8>>, Option<u64>) = redis::cmd("MGET")
            .arg(self.keys.cache(name))
            .arg(self.keys.cache_generation(name))
            .query_async(&mut conn)
            .await
            .context("cache GET")?;
        Ok((value, Generation(generation.unwrap_or(0))))
    }

    /// Stores `value` unless `name` was invalidated since `generation` was read
    /// (`lua/cache_set_if_generation.lua`). Returns
    /// whether it was stored. This is what stops a load that read the database before a
    /// change from putting the old value back after the change removed it.
    pub async fn set_if(
        &self,
        name: &str,
        value: &[u8],
        ttl: Duration,
        generation: Generation,
    ) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let stored: i64 = CACHE_SET_IF_GENERATION
            .key(self.keys.cache(name))
            .key(self.keys.cache_generation(name))
            .arg(value)
            .arg(generation.0)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .context("cache SET")?;
        Ok(stored == 1)
    }

    /// Removes `names`, moves each to a new generation (so loads begun before cannot store
    /// their result), then tells every API process's near cache. Each name's value and
    /// generation change in one transaction (they share a slot); the names' transactions are
    /// sent together, and the announcement after them all (on a Cluster a channel has a slot of
    /// its own).
    pub async fn delete(&self, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let conn = self.redis.connection().await?;
        let message = serde_json::to_string(names).context("encode invalidation")?;
        let invalidations = names.iter().map(|name| {
            let mut conn = conn.clone();
            let generation = self.keys.cache_generation(name);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("INCR")
                .arg(&generation)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&generation)
                .arg(GENERATION_TTL.as_millis() as u64)
                .ignore()
                .cmd("DEL")
                .arg(self.keys.cache(name))
                .ignore();
            async move { pipe.query_async::<()>(&mut conn).await }
        });
        futures_util::future::try_join_all(invalidations)
            .await
            .context("cache DEL")?;
        redis::cmd("PUBLISH")
            .arg(self.invalidation_channel())
            .arg(message)
            .query_async::<i64>(&mut conn.clone())
            .await
            .context("cache PUBLISH")?;
        Ok(())
    }
}

/// How many times a cache name had been invalidated when it was read (0: never, or so long
/// ago that the counter expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(pub u64);

/// A generation counter expires so that names no longer used leave nothing behind. The check
/// holds as long as no load takes longer than this (loads take milliseconds).
const GENERATION_TTL: Duration = Duration::from_secs(3600);

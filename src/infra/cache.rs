//! The Redis side of the look-aside cache: opaque byte values with a time to live, and the
//! invalidation channel that keeps the API processes' near caches in step.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::redis::Redis;
use crate::app::cache::NearCache;

#[derive(Clone)]
pub struct CacheStore {
    redis: Redis,
    prefix: String,
}

impl CacheStore {
    pub fn new(redis: Redis, key_prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{key_prefix}cache:"),
        }
    }

    /// The same store over another Redis handle.
    pub fn with_redis(&self, redis: Redis) -> Self {
        Self {
            redis,
            prefix: self.prefix.clone(),
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Pub/sub channel of invalidations: each message is a JSON array of cache names.
    pub fn invalidation_channel(&self) -> String {
        format!("{}invalidations", self.prefix)
    }

    /// Key of `name`'s generation: a counter that every invalidation of `name` increments.
    pub fn generation_key(&self, name: &str) -> String {
        format!("{}gen:{name}", self.prefix)
    }

    /// The value of `name`, if cached, and its generation, read together: a value loaded
    /// after this read may be stored only under the same generation ([`Self::set_if`]).
    pub async fn get(&self, name: &str) -> anyhow::Result<(Option<Vec<u8>>, Generation)> {
        let mut conn = self.redis.connection().await?;
        let (value, generation): (Option<Vec<u8>>, Option<u64>) = redis::cmd("MGET")
            .arg(self.key(name))
            .arg(self.generation_key(name))
            .query_async(&mut conn)
            .await
            .context("cache GET")?;
        Ok((value, Generation(generation.unwrap_or(0))))
    }

    /// Stores `value` unless `name` was invalidated since `generation` was read. Returns
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
        let stored: i64 = SET_IF_GENERATION
            .key(self.key(name))
            .key(self.generation_key(name))
            .arg(value)
            .arg(generation.0)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .context("cache SET")?;
        Ok(stored == 1)
    }

    /// Removes `names`, moves each to a new generation (so loads begun before cannot store
    /// their result) and tells every API process's near cache, in one transaction.
    pub async fn delete(&self, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.connection().await?;
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let message = serde_json::to_string(names).context("encode invalidation")?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for name in names {
            let generation = self.generation_key(name);
            pipe.cmd("INCR").arg(&generation).ignore();
            pipe.cmd("PEXPIRE")
                .arg(&generation)
                .arg(GENERATION_TTL.as_millis() as u64)
                .ignore();
        }
        pipe.cmd("DEL")
            .arg(keys)
            .ignore()
            .cmd("PUBLISH")
            .arg(self.invalidation_channel())
            .arg(message)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .context("cache DEL and PUBLISH")?;
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

static SET_IF_GENERATION: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local generation = redis.call('GET', KEYS[2]) or '0'
        if generation ~= ARGV[2] then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        return 1
        ",
    )
});

/// Follows the invalidation channel until `shutdown`, evicting what each message names from
/// `near`. The near cache is live only while subscribed: it starts empty on every
/// (re)subscription and is cleared when the subscription is lost, so no copy outlives a gap
/// in which invalidations could have been missed by more than the near TTL.
pub async fn follow_invalidations(redis: Redis, channel: String, near: Arc<NearCache>, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match subscribe(&redis, &channel).await {
            Ok(pubsub) => {
                failures = 0;
                near.set_live(true);
                tracing::debug!(channel = %channel, "following cache invalidations");
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        message = messages.next() => match message {
                            Some(message) => match serde_json::from_slice::<Vec<String>>(message.get_payload_bytes()) {
                                Ok(names) => near.evict(&names),
                                // Unreadable: assume the worst.
                                Err(_) => near.clear(),
                            },
                            None => break,
                        },
                    }
                }
                near.set_live(false);
                if !shutdown.is_cancelled() {
                    tracing::warn!(channel = %channel, "lost the cache invalidation channel; near cache off until it is back");
                }
            }
            Err(err) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(channel = %channel, error = %format!("{err:#}"), "cannot follow cache invalidations; near cache off");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(crate::stream::consumer::retry_delay(failures.max(1))) => {}
        }
    }
}

async fn subscribe(redis: &Redis, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
    let connect = async {
        let mut pubsub = redis.client().get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        anyhow::Ok(pubsub)
    };
    tokio::time::timeout(redis.timeout(), connect)
        .await
        .context("subscribe timed out")?
        .context("subscribe to cache invalidations")
}

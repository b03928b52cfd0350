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

    pub async fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut conn = self.redis.connection().await?;
        redis::cmd("GET")
            .arg(self.key(name))
            .query_async(&mut conn)
            .await
            .context("cache GET")
    }

    pub async fn set(&self, name: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()> {
        let mut conn = self.redis.connection().await?;
        redis::cmd("SET")
            .arg(self.key(name))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<()>(&mut conn)
            .await
            .context("cache SET")
    }

    pub async fn delete(&self, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.connection().await?;
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let message = serde_json::to_string(names).context("encode invalidation")?;
        redis::pipe()
            .cmd("DEL")
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

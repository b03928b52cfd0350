//! The Redis side of the look-aside cache: opaque byte values with a time to live.

use std::time::Duration;

use anyhow::Context;

use super::redis::Redis;

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
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<i64>(&mut conn)
            .await
            .context("cache DEL")?;
        Ok(())
    }
}

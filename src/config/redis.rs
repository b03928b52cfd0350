//! Redis: where it is, how long to wait for it, and the prefix of every key.

use std::time::Duration;

use secrecy::SecretString;

use super::env::{ConfigError, Env};

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_KEY_PREFIX: &str = "imticket:";

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL` (run Redis with `./redis.conf`); with `cluster`, one or more seed nodes
    /// separated by commas (`redis://127.0.0.1:7000,redis://127.0.0.1:7001`).
    pub url: SecretString,
    /// `IMTICKET_REDIS_CLUSTER`: `true` = `REDIS_URL` names a Redis Cluster.
    pub cluster: bool,
    /// `IMTICKET_REDIS_TIMEOUT_MS`: connect and response timeout.
    pub timeout: Duration,
    /// `IMTICKET_REDIS_KEY_PREFIX`: the prefix of every key, so deployments can share a Redis.
    pub key_prefix: String,
    /// `IMTICKET_STREAM_PARTITIONS`: the payments and expiry streams (and the due holds) split
    /// into this many, each in a Cluster slot of its own (1: not split). Part of the key
    /// layout: every process of a deployment must say the same.
    pub stream_partitions: u16,
}

impl RedisSettings {
    /// Read the same way by the services and the operator CLI.
    pub(crate) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: SecretString::from(env.get("REDIS_URL").unwrap_or_else(|| DEFAULT_URL.to_owned())),
            cluster: env.choice("IMTICKET_REDIS_CLUSTER", "false", &["true", "false"])? == "true",
            timeout: env.millis("IMTICKET_REDIS_TIMEOUT_MS", 2000, 50..=60_000)?,
            key_prefix: key_prefix(env)?,
            stream_partitions: env.number("IMTICKET_STREAM_PARTITIONS", 1, 1..=64)?,
        })
    }
}

/// Up to 64 characters of `[A-Za-z0-9:_.-]`, so keys stay readable in `redis-cli` and cannot
/// contain a hash tag that would pin every key to one Cluster slot. Empty is allowed (no
/// prefix), unlike other variables where empty means the default.
fn key_prefix(env: &Env) -> Result<String, ConfigError> {
    const NAME: &str = "IMTICKET_REDIS_KEY_PREFIX";
    let raw = env.raw(NAME).unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    let valid = raw.len() <= 64 && raw.chars().all(|c| c.is_ascii_alphanumeric() || ":_.-".contains(c));
    if valid {
        Ok(raw)
    } else {
        Err(ConfigError::new(
            NAME,
            format!("expected up to 64 characters of A-Z a-z 0-9 : _ . -, got {raw:?}"),
        ))
    }
}

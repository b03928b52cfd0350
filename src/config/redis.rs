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
        let url = env.get("REDIS_URL").unwrap_or_else(|| DEFAULT_URL.to_owned());
        let cluster = env.choice("IMTICKET_REDIS_CLUSTER", "false", &["true", "false"])? == "true";
        check_url(&url, cluster)?;
        Ok(Self {
            url: SecretString::from(url),
            cluster,
            timeout: env.millis("IMTICKET_REDIS_TIMEOUT_MS", 2000, 50..=60_000)?,
            key_prefix: key_prefix(env)?,
            stream_partitions: env.number("IMTICKET_STREAM_PARTITIONS", 1, 1..=64)?,
        })
    }
}

/// One Redis URL, or with `cluster` one or more `redis://` seed nodes separated by commas (a
/// cluster is reached over TCP). The message never shows the URL: it may hold a password.
fn check_url(url: &str, cluster: bool) -> Result<(), ConfigError> {
    const NAME: &str = "REDIS_URL";
    let seeds: Vec<&str> = url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if !cluster && seeds.len() > 1 {
        return Err(ConfigError::new(
            NAME,
            "lists several servers; set IMTICKET_REDIS_CLUSTER=true for a Redis Cluster",
        ));
    }
    if seeds.is_empty() {
        return Err(ConfigError::new(NAME, "names no server"));
    }
    for (i, seed) in seeds.iter().enumerate() {
        let parsed = redis::parse_redis_url(seed);
        let tcp = seed.starts_with("redis://") || seed.starts_with("rediss://");
        if parsed.is_none() || (cluster && !tcp) {
            let expected = if cluster {
                "redis://HOST:PORT seed nodes separated by commas"
            } else {
                "a redis://, rediss:// or redis+unix:// URL"
            };
            return Err(ConfigError::new(
                NAME,
                format!("entry {} is not valid: expected {expected}", i + 1),
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn redis_url_is_one_server_or_the_seeds_of_a_cluster() {
        assert!(check_url("redis://127.0.0.1:6379", false).is_ok());
        assert!(check_url("redis+unix:///tmp/r.sock", false).is_ok());
        assert!(check_url("redis://127.0.0.1:7000,redis://127.0.0.1:7001", true).is_ok());
        assert!(check_url("redis://127.0.0.1:7000", true).is_ok());
        let several = check_url("redis://a:1,redis://b:2", false).unwrap_err().to_string();
        assert!(
            several.contains("REDIS_URL") && several.contains("IMTICKET_REDIS_CLUSTER=true"),
            "{several}"
        );
        assert!(check_url("redis+unix:///tmp/r.sock", true).is_err(), "a cluster is TCP");
        assert!(check_url("redis://a:1,nonsense", true).is_err());
        let secret = check_url("redis://:hunter2@a:1,bogus://x", true)
            .unwrap_err()
            .to_string();
        assert!(!secret.contains("hunter2"), "{secret}");
    }
}

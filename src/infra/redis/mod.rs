//! Redis: everything ImTicket says to it lives in this folder.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Redis`] handle: a multiplexed connection that reconnects by itself, one per handle (workers share one per process; the API has one per HTTP worker thread) |
//! | `keys.rs` | every key name, under the deployment's prefix |
//! | `protocol.rs` | the protocol's special ids (`*`, `>`, `-`, `+`, `0`) as named constants, and [`protocol::EntryId`] |
//! | `reply.rs` | each reply shape parsed once, into a typed value ([`redis::FromRedisValue`]) |
//! | `scripts.rs`, `lua/*.lua` | every Lua script, one file each, loaded with `include_str!` |
//! | `streams.rs` | stream and consumer-group commands (for the stream runtime and the operator CLI) |
//! | `waiting_room.rs` | one concert's waiting room |
//! | `seat_gates.rs`, `seat_states.rs` | a seat's hold gate; a schedule's seat states |
//! | `expiry_due.rs` | holds by due time, turned into `hold.expired` events |
//! | `cache_store.rs` | the look-aside cache's values, generations and invalidation channel |
//! | `rate_limits.rs` | one rate-limit decision per request, shared by every API instance |
//!
//! Every function takes a connection it does not name the type of (`impl ConnectionLike`) or
//! the [`Redis`] handle, so another kind of connection (Redis Cluster) changes this folder only.

pub mod cache_store;
pub mod expiry_due;
pub mod keys;
pub mod protocol;
pub mod rate_limits;
pub mod reply;
pub mod scripts;
pub mod seat_gates;
pub mod seat_states;
pub mod streams;
pub mod waiting_room;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

/// What every command function takes: any connection (a handle's shared one, a dedicated one).
pub use redis::aio::ConnectionLike;

/// The shared connection of a handle (multiplexed, reconnecting by itself).
/// Whether `err` says Redis could not be reached (refused, dropped, timed out): the command
/// was not done and may be retried once Redis is back.
pub fn unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<redis::RedisError>().is_some_and(|e| {
            e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout()
        }) || cause.downcast_ref::<tokio::time::error::Elapsed>().is_some()
    })
}

pub type Connection = ConnectionManager;
/// A connection of its own, for blocking reads.
pub type DedicatedConnection = MultiplexedConnection;

#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: Arc<OnceCell<ConnectionManager>>,
    timeout: Duration,
}

impl Redis {
    /// Validates the URL only. The first connection is made on first use, so a process starts
    /// even while Redis is down and reports itself not ready until it is back.
    pub fn new(url: &secrecy::SecretString, timeout: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose_secret()).context("REDIS_URL is not a valid Redis URL")?;
        Ok(Self {
            client,
            manager: Arc::new(OnceCell::new()),
            timeout,
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A handle with a connection of its own, made on first use on the runtime that first uses
    /// it. The API gives each HTTP worker thread one ([`crate::app::Deps::for_this_thread`]):
    /// a connection driven on another thread costs two cross-thread wake-ups per command, about
    /// half the time of a cache hit.
    pub fn own_connection(&self) -> Self {
        Self {
            client: self.client.clone(),
            manager: Arc::new(OnceCell::new()),
            timeout: self.timeout,
        }
    }

    /// The shared connection. Once made, the manager re-establishes it after any failure;
    /// commands sent while Redis is down fail fast (within the configured timeout).
    pub async fn connection(&self) -> anyhow::Result<Connection> {
        let manager = self
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                tokio::time::timeout(
                    self.timeout,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                .context("connect to Redis timed out")?
                .context("connect to Redis")
            })
            .await?;
        Ok(manager.clone())
    }

    /// A connection of its own, for commands that block (XREADGROUP … BLOCK): on the shared
    /// multiplexed connection they would delay every other command. `blocking_for` is added
    /// to the response timeout.
    pub async fn dedicated_connection(&self, blocking_for: Duration) -> anyhow::Result<DedicatedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout + blocking_for);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("open a dedicated Redis connection")
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let pong: String = tokio::time::timeout(self.timeout, redis::cmd("PING").query_async(&mut conn))
            .await
            .context("Redis ping timed out")?
            .context("Redis ping")?;
        anyhow::ensure!(pong == "PONG", "unexpected PING reply {pong:?}");
        Ok(())
    }

    /// A pub/sub connection subscribed to `channel`, within the handle's timeout.
    pub async fn subscribe(&self, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            anyhow::Ok(pubsub)
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .context("subscribe timed out")?
            .with_context(|| format!("subscribe to {channel}"))
    }

    /// `used_memory` and `maxmemory` (0: no limit) from `INFO memory`.
    pub async fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let mut conn = self.connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .context("INFO memory")?;
        Ok(parse_memory(&info))
    }
}

fn parse_memory(info: &str) -> (u64, u64) {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("used_memory"), field("maxmemory"))
}

#[cfg(test)]
mod tests {
    use super::parse_memory;

    #[test]
    fn reads_used_and_max_memory_from_info() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:9\r\nmaxmemory:4294967296\r\nmaxmemory_human:4.00G\r\n";
        assert_eq!(parse_memory(info), (1_048_576, 4_294_967_296));
        assert_eq!(parse_memory("# Memory\r\n"), (0, 0));
    }
}

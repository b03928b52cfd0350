//! Redis connections: a multiplexed connection that reconnects by itself, one per handle
//! (workers share one per process; the API has one per HTTP worker thread).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

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
    pub async fn connection(&self) -> anyhow::Result<ConnectionManager> {
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
    pub async fn dedicated_connection(&self, blocking_for: Duration) -> anyhow::Result<MultiplexedConnection> {
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
}

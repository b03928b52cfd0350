//! Redis: everything ImTicket says to it lives in this folder.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Redis`] handle: to one Redis or a Redis Cluster; a multiplexed connection that reconnects by itself, one per handle (workers share one per process; the API has one per HTTP worker thread) |
//! | `connection.rs` | the connection types the handle gives out (one Redis, a Cluster) and what they say of the topology |
//! | `keys.rs` | every key name, under the deployment's prefix |
//! | `protocol.rs` | the protocol's special ids (`*`, `>`, `-`, `+`, `0`) as named constants, and [`protocol::EntryId`] |
//! | `reply.rs` | each reply shape parsed once, into a typed value ([`redis::FromRedisValue`]) |
//! | `scripts.rs`, `lua/*.lua` | every Lua script, one file each, loaded with `include_str!` |
//! | `streams.rs` | stream and consumer-group commands (for the stream runtime and the operator CLI) |
//! | `group_reader.rs` | a consumer's `XREADGROUP` connection: on one Redis a lean RESP2 one that decodes the reply straight into entries |
//! | `waiting_room.rs` | one concert's waiting room |
//! | `seat_gates.rs`, `seat_states.rs` | a seat's hold gate; a schedule's seat states |
//! | `expiry_due.rs` | holds by due time, turned into `hold.expired` events |
//! | `cache_store.rs` | the look-aside cache's values, generations and invalidation channel |
//! | `rate_limits.rs` | one rate-limit decision per request, shared by every API instance |
//!
//! Every function takes a connection it does not name the type of (`impl ConnectionLike`) or
//! the [`Redis`] handle, so Redis Cluster (`IMTICKET_REDIS_CLUSTER=true`) changes this folder
//! only. On a Cluster a script, a pipeline or a `MULTI` must touch the keys of one slot: every
//! key set they touch shares a hash tag (see `keys.rs`).

pub mod cache_store;
mod connection;
pub mod expiry_due;
mod group_reader;
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{AsyncConnectionConfig, Value};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

pub use connection::{Connection, DedicatedConnection, Topology};
pub use group_reader::GroupReader;
/// What every command function takes: any connection (a handle's shared one, a dedicated one).
pub use redis::aio::ConnectionLike;

use crate::config::RedisSettings;

/// Whether `err` says Redis could not be reached (refused, dropped, timed out, a Cluster
/// without a master for the slot): the command was not done and may be retried once Redis is
/// back.
pub fn unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<redis::RedisError>().is_some_and(|e| {
            e.is_io_error()
                || e.is_connection_refusal()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_cluster_error()
                || matches!(e.code(), Some("CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN" | "LOADING"))
        }) || cause.downcast_ref::<tokio::time::error::Elapsed>().is_some()
    })
}

/// Where the handle connects: one server, or the seed nodes of a Cluster.
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    Cluster {
        client: ClusterClient,
        /// Each seed node on its own, for pub/sub: a Cluster forwards every `PUBLISH` to every
        /// node, so a subscriber on any one node hears them all.
        seeds: Vec<redis::Client>,
    },
}

#[derive(Clone)]
pub struct Redis {
    target: Target,
    manager: Arc<OnceCell<Connection>>,
    /// On a Cluster: the current connection, replaced when a command raised its flag.
    cluster: Arc<ClusterConnections>,
    timeout: Duration,
}

#[derive(Default)]
struct ClusterConnections {
    current: std::sync::RwLock<Option<Connection>>,
    /// One rebuild at a time; the others wait for it and take its result.
    rebuilding: tokio::sync::Mutex<()>,
}

impl ClusterConnections {
    /// The current connection, unless a command found the cluster changed under it.
    fn fresh(&self) -> Option<Connection> {
        let current = self.current.read().ok()?;
        match current.as_ref() {
            Some(conn @ Connection::Cluster(_, stale)) if !stale.load(Ordering::Relaxed) => Some(conn.clone()),
            _ => None,
        }
    }
}

impl Redis {
    /// Validates the URL(s) only. The first connection is made on first use, so a process
    /// starts even while Redis is down and reports itself not ready until it is back.
    pub fn new(settings: &RedisSettings) -> anyhow::Result<Self> {
        let url = settings.url.expose_secret();
        let target = if settings.cluster {
            let seeds = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    anyhow::ensure!(
                        !u.starts_with("redis+unix:") && !u.starts_with("unix:"),
                        "a Redis Cluster is reached over TCP: REDIS_URL lists redis://host:port seed nodes"
                    );
                    redis::Client::open(u).context("REDIS_URL lists a seed node that is not a valid Redis URL")
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::ensure!(!seeds.is_empty(), "REDIS_URL lists no seed node");
            let client = ClusterClient::builder(seeds.iter().map(|c| c.get_connection_info().clone()))
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout)
                .retries(3)
                .min_retry_wait(50)
                .max_retry_wait(500)
                .build()
                .context("REDIS_URL does not name a usable Redis Cluster")?;
            Target::Cluster { client, seeds }
        } else {
            anyhow::ensure!(
                !url.contains(','),
                "REDIS_URL lists several servers: set IMTICKET_REDIS_CLUSTER=true for a Redis Cluster"
            );
            Target::Single(redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?)
        };
        Ok(Self {
            target,
            manager: Arc::new(OnceCell::new()),
            cluster: Arc::default(),
            timeout: settings.timeout,
        })
    }

    /// Whether this handle talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
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
            target: self.target.clone(),
            manager: Arc::new(OnceCell::new()),
            cluster: Arc::default(),
            timeout: self.timeout,
        }
    }

    /// The shared connection. Once made, it re-establishes itself after any failure; on a
    /// Cluster, a command that found a node unreachable or the cluster down makes the next call
    /// open a new cluster connection, which reads the slot map again (after a failover: the
    /// promoted replica). Commands sent while Redis is down fail fast (within the configured
    /// timeout).
    pub async fn connection(&self) -> anyhow::Result<Connection> {
        let client = match &self.target {
            Target::Single(client) => return self.single_connection(client).await,
            Target::Cluster { client, .. } => client,
        };
        if let Some(conn) = self.cluster.fresh() {
            return Ok(conn);
        }
        let _rebuilding = self.cluster.rebuilding.lock().await;
        if let Some(conn) = self.cluster.fresh() {
            return Ok(conn);
        }
        let conn = tokio::time::timeout(self.timeout, client.get_async_connection())
            .await
            .context("connect to the Redis Cluster timed out")?
            .context("connect to the Redis Cluster")?;
        let conn = Connection::Cluster(conn, Arc::new(AtomicBool::new(false)));
        if let Ok(mut current) = self.cluster.current.write() {
            *current = Some(conn.clone());
        }
        Ok(conn)
    }

    async fn single_connection(&self, client: &redis::Client) -> anyhow::Result<Connection> {
        let manager = self
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                tokio::time::timeout(self.timeout, ConnectionManager::new_with_config(client.clone(), config))
                    .await
                    .context("connect to Redis timed out")?
                    .map(Connection::Single)
                    .context("connect to Redis")
            })
            .await?;
        Ok(manager.clone())
    }

    /// A connection of its own, for commands that block (XREADGROUP … BLOCK): on the shared
    /// multiplexed connection they would delay every other command. `blocking_for` is added
    /// to the response timeout.
    pub async fn dedicated_connection(&self, blocking_for: Duration) -> anyhow::Result<DedicatedConnection> {
        let response_timeout = self.timeout + blocking_for;
        let connect = async {
            match &self.target {
                Target::Single(client) => {
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(self.timeout)
                        .set_response_timeout(response_timeout);
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map(DedicatedConnection::Single)
                }
                Target::Cluster { client, .. } => {
                    let config = redis::cluster::ClusterConfig::new()
                        .set_connection_timeout(self.timeout)
                        .set_response_timeout(response_timeout);
                    client
                        .get_async_connection_with_config(config)
                        .await
                        .map(DedicatedConnection::Cluster)
                }
            }
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .context("open a dedicated Redis connection timed out")?
            .context("open a dedicated Redis connection")
    }

    /// The connection a stream consumer reads new entries on ([`GroupReader`]): on one Redis
    /// over TCP or a Unix socket the lean reader, which connects on first use; otherwise (a
    /// Cluster) a [`Self::dedicated_connection`].
    pub async fn group_reader(&self, blocking_for: Duration) -> anyhow::Result<GroupReader> {
        if let Target::Single(client) = &self.target
            && let Some(lean) = group_reader::LeanReader::new(client.get_connection_info(), self.timeout)
        {
            return Ok(GroupReader::Lean(lean));
        }
        self.dedicated_connection(blocking_for).await.map(GroupReader::Client)
    }

    /// PING. On a Cluster, of one node picked at random: the Cluster is reachable. (A PING of
    /// every master would make every process of the fleet report itself not ready while one
    /// master fails over, though the other shards keep serving.)
    pub async fn ping(&self) -> anyhow::Result<()> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let mut conn = self.connection().await?;
        let cmd = redis::cmd("PING");
        let pong = async {
            match &mut conn {
                Connection::Cluster(cluster, _) => cluster
                    .route_command(&cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
                    .and_then(|v| redis::from_redis_value::<String>(&v)),
                single => cmd.query_async::<String>(single).await,
            }
        };
        let pong = tokio::time::timeout(self.timeout, pong)
            .await
            .context("Redis ping timed out")?
            .context("Redis ping")?;
        anyhow::ensure!(pong == "PONG", "unexpected PING reply {pong:?}");
        Ok(())
    }

    /// A pub/sub connection subscribed to `channel`, within the handle's timeout. On a Cluster
    /// the first seed node that answers: a Cluster delivers every `PUBLISH` on every node.
    pub async fn subscribe(&self, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
        let clients: Vec<&redis::Client> = match &self.target {
            Target::Single(client) => vec![client],
            Target::Cluster { seeds, .. } => seeds.iter().collect(),
        };
        let mut last = None;
        for client in clients {
            let connect = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                anyhow::Ok(pubsub)
            };
            match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok(pubsub)) => return Ok(pubsub),
                Ok(Err(err)) => last = Some(err),
                Err(elapsed) => last = Some(anyhow::Error::new(elapsed).context("subscribe timed out")),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no Redis node to subscribe on"))
            .context(format!("subscribe to {channel}")))
    }

    /// `INFO <section>` of the server, or of every master of a Cluster (in no set order).
    pub async fn info(&self, section: &str) -> anyhow::Result<Vec<String>> {
        let mut conn = self.connection().await?;
        let mut cmd = redis::cmd("INFO");
        cmd.arg(section);
        let reply: Value = tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
            .await
            .with_context(|| format!("INFO {section} timed out"))?
            .with_context(|| format!("INFO {section}"))?;
        let texts = match reply {
            // A Cluster answers with one reply per master, keyed by its address.
            Value::Map(per_node) => per_node
                .into_iter()
                .map(|(_, text)| redis::from_redis_value::<String>(&text))
                .collect::<redis::RedisResult<Vec<_>>>(),
            other => redis::from_redis_value::<String>(&other).map(|text| vec![text]),
        };
        texts.with_context(|| format!("INFO {section} reply"))
    }

    /// `used_memory` and `maxmemory` (0: no limit) from `INFO memory`; on a Cluster, of the
    /// fullest master (the first to refuse writes).
    pub async fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let infos = self.info("memory").await?;
        Ok(infos
            .iter()
            .map(|info| parse_memory(info))
            .max_by(|a, b| fullness(*a).total_cmp(&fullness(*b)))
            .unwrap_or((0, 0)))
    }
}

fn fullness((used, max): (u64, u64)) -> f64 {
    if max == 0 { 0.0 } else { used as f64 / max as f64 }
}

/// The `field:value` of an `INFO` text.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn parse_memory(info: &str) -> (u64, u64) {
    let field = |name: &str| info_field(info, name).and_then(|v| v.parse().ok()).unwrap_or(0);
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

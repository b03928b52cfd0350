//! The two kinds of connection a [`super::Redis`] handle gives out, to one Redis or to a Redis
//! Cluster, as one type each that every command function takes (`impl ConnectionLike`), and
//! what a connection says about the cluster ([`Topology`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// The shared connection of a handle: to one Redis (multiplexed, reconnecting by itself) or to
/// a Redis Cluster (one multiplexed connection per node, following `MOVED`/`ASK` and
/// failovers). Every command function takes it as `impl ConnectionLike`.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    /// With the flag it raises when a command finds a node unreachable (see [`Redis::connection`]).
    Cluster(ClusterConnection, Arc<AtomicBool>),
}

/// A connection of its own, for blocking reads: on the shared multiplexed connection a
/// blocking `XREADGROUP` would delay every other command (on a Cluster, every command to that
/// node).
#[derive(Clone)]
pub enum DedicatedConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Whether a cluster command's error may mean the client's slot map is out of date: a node it
/// routes to no longer answers (killed, cut off) or says the cluster is down there. The redis
/// crate reconnects to the same address after such errors but refreshes the slot map only on
/// `MOVED`, which a node that cannot be reached never sends: after a failover it would keep
/// trying the old master.
fn maybe_stale_slots(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            redis::ErrorKind::ClusterDown
                | redis::ErrorKind::MasterDown
                | redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterConnectionNotFound
        )
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c, stale) => Box::pin(async move {
                let answer = c.req_packed_command(cmd).await;
                if answer.as_ref().is_err_and(maybe_stale_slots) {
                    stale.store(true, Ordering::Relaxed);
                }
                answer
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c, stale) => Box::pin(async move {
                let answer = c.req_packed_commands(cmd, offset, count).await;
                if answer.as_ref().is_err_and(maybe_stale_slots) {
                    stale.store(true, Ordering::Relaxed);
                }
                answer
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c, _) => c.get_db(),
        }
    }
}

impl ConnectionLike for DedicatedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// What a connection knows of where keys live: on a Cluster, keys of different slots cannot
/// share a `MULTI`.
pub trait Topology {
    fn is_cluster(&self) -> bool;
}

impl Topology for Connection {
    fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(..))
    }
}

impl Topology for DedicatedConnection {
    fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

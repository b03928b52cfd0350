//! Gauges of the resources a process shares, sampled every few seconds for Prometheus: the
//! PostgreSQL pool (`db_pool_connections{state="busy"|"idle"}`, `db_pool_max_connections`) and
//! Redis memory (`redis_memory_used_bytes`, `redis_memory_max_bytes`; 0 = no `maxmemory`).
//! Every process (API and worker) samples its own pool; the Redis figures are the same server
//! seen from each (dashboards and alerts take the max). With them, the process's own CPU,
//! memory and file descriptors ([`crate::telemetry::process`]).

use std::time::Duration;

use crate::infra::postgres::Db;
use tokio_util::sync::CancellationToken;

use super::redis::Redis;

/// How often the gauges are refreshed: well under Prometheus's usual 15 s scrape interval.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Samples until `stop` is cancelled. Redis errors leave the Redis gauges as they were (the
/// readiness probe and the dependency metrics report an outage; this must not spam the log).
pub async fn run(db: Db, redis: Redis, max_connections: u32, stop: CancellationToken) {
    metrics::gauge!("db_pool_max_connections").set(f64::from(max_connections));
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        sample_pool(&db);
        crate::telemetry::process::record();
        if let Ok(Ok((used, max))) = tokio::time::timeout(INTERVAL, redis.memory()).await {
            metrics::gauge!("redis_memory_used_bytes").set(used as f64);
            metrics::gauge!("redis_memory_max_bytes").set(max as f64);
        }
    }
}

fn sample_pool(db: &Db) {
    let size = db.pool().size();
    let idle = u32::try_from(db.pool().num_idle()).unwrap_or(u32::MAX).min(size);
    metrics::gauge!("db_pool_connections", "state" => "busy").set(f64::from(size - idle));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(idle));
}

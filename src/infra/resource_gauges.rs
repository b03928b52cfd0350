//! Gauges of the resources a process shares, sampled every few seconds for Prometheus: the
//! PostgreSQL pool (`db_pool_connections{state="busy"|"idle"}`, `db_pool_max_connections`) and
//! Redis memory (`redis_memory_used_bytes`, `redis_memory_max_bytes`; 0 = no `maxmemory`).
//! Every process (API and worker) samples its own pool; the Redis figures are the same server
//! seen from each (dashboards and alerts take the max).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::redis::Redis;

/// How often the gauges are refreshed: well under Prometheus's usual 15 s scrape interval.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Samples until `stop` is cancelled. Redis errors leave the Redis gauges as they were (the
/// readiness probe and the dependency metrics report an outage; this must not spam the log).
pub async fn run(db: PgPool, redis: Redis, max_connections: u32, stop: CancellationToken) {
    metrics::gauge!("db_pool_max_connections").set(f64::from(max_connections));
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        sample_pool(&db);
        if let Ok(Ok((used, max))) = tokio::time::timeout(INTERVAL, redis_memory(&redis)).await {
            metrics::gauge!("redis_memory_used_bytes").set(used as f64);
            metrics::gauge!("redis_memory_max_bytes").set(max as f64);
        }
    }
}

fn sample_pool(db: &PgPool) {
    let size = db.size();
    let idle = u32::try_from(db.num_idle()).unwrap_or(u32::MAX).min(size);
    metrics::gauge!("db_pool_connections", "state" => "busy").set(f64::from(size - idle));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(idle));
}

/// `used_memory` and `maxmemory` from `INFO memory`.
async fn redis_memory(redis: &Redis) -> anyhow::Result<(u64, u64)> {
    let mut conn = redis.connection().await?;
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await?;
    Ok(parse_memory(&info))
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

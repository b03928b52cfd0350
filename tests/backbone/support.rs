//! A test deployment of the backbone: its own Redis, a fresh migrated database, a unique key
//! prefix, and helpers to publish, drain deterministically and count effects.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use imticket::app::Deps;
use imticket::events::Envelope;
use imticket::infra::redis::Connection;
use imticket::infra::redis::keys::Keys;
use imticket::stream::probe::ProbeHandler;
use imticket::stream::{BatchReport, Consumer, ConsumerSettings, Handler, Subscription};
use sqlx::PgPool;

pub use crate::helpers::{KillOnDrop, signal, wait_exit};
use crate::helpers::{config_from, test_env};
use crate::servers::Redis;

/// The probe consumer process (`src/bin/imticket-probe.rs`) that the crash tests kill.
pub const PROBE: &str = env!("CARGO_BIN_EXE_imticket-probe");
pub const WORKER: &str = env!("CARGO_BIN_EXE_imticket-worker");
pub const ADMIN: &str = env!("CARGO_BIN_EXE_imticket-admin");

pub struct Backbone {
    pub redis: Redis,
    /// The test's own pool, straight at PostgreSQL even when the deployment goes through
    /// PgBouncer; the code under test uses `deps.db`.
    pub db: PgPool,
    pub env: HashMap<String, String>,
    pub deps: Deps,
    pub keys: Keys,
}

/// Short waits and back-offs so tests run fast; reclaim is checked every round.
pub fn fast_settings() -> ConsumerSettings {
    ConsumerSettings {
        batch_size: 100,
        concurrency: 2,
        block: Duration::from_millis(20),
        claim_idle: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(5),
        max_deliveries: 3,
        reclaim_interval: Duration::ZERO,
    }
}

pub async fn backbone() -> Backbone {
    // As the binaries do at start: the recorder must exist before anything counts.
    imticket::telemetry::metrics_handle();
    let redis = Redis::start();
    let mut env = test_env(&redis).await;
    env.insert(
        "IMTICKET_REDIS_KEY_PREFIX".into(),
        format!("t{}:", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    );
    let deps = imticket::root::deps(config_from(&env)).unwrap();
    imticket::infra::postgres::migrate(&deps.db).await.unwrap();
    ProbeHandler::install(&deps.db).await.unwrap();
    let keys = deps.keys.clone();
    Backbone {
        db: crate::servers::direct_pool(&env["DATABASE_URL"]).await,
        redis,
        env,
        deps,
        keys,
    }
}

impl Backbone {
    pub async fn conn(&self) -> Connection {
        self.deps.redis.connection().await.unwrap()
    }

    pub fn key(&self, name: &str) -> String {
        self.keys.stream_named(name)
    }

    /// XADDs `n` probe events; returns (entry id, event id) in order.
    pub async fn publish(&self, key: &str, n: usize) -> Vec<(String, uuid::Uuid)> {
        let mut conn = self.conn().await;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(500) {
            let envelopes: Vec<Envelope> = (start..(start + 500).min(n))
                .map(|i| Envelope::new("probe.ping", serde_json::json!({ "n": i })))
                .collect();
            let mut pipe = redis::pipe();
            for e in &envelopes {
                pipe.cmd("XADD").arg(key).arg("*").arg(e.to_fields());
            }
            let ids: Vec<String> = pipe.query_async(&mut conn).await.unwrap();
            out.extend(ids.into_iter().zip(envelopes.iter().map(|e| e.event_id)));
        }
        out
    }

    /// XADDs one envelope; returns its entry id.
    pub async fn xadd(&self, key: &str, envelope: &Envelope) -> String {
        redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg(envelope.to_fields())
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }

    pub fn consumer<H: Handler>(&self, key: &str, group: &str, handler: H, settings: ConsumerSettings) -> Consumer<H> {
        imticket::root::stream_runtime(&self.deps)
            .with_settings(settings)
            .consumer(Subscription::custom(key, group, handler))
    }

    pub fn probe(&self, group: &str) -> ProbeHandler {
        ProbeHandler::new(self.deps.db.clone(), group, Duration::ZERO)
    }

    /// (effect rows, distinct events) of a group's probe handler.
    pub async fn effects(&self, group: &str) -> (i64, i64) {
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM probe_effects WHERE consumer_group = $1")
            .bind(group)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn pending(&self, key: &str, group: &str) -> i64 {
        // No group yet (NOGROUP) counts as nothing pending.
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .query_async(&mut self.conn().await)
            .await
            .unwrap_or(redis::Value::Nil);
        match summary {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// Creates `group` if needed and reads up to `count` new entries as `consumer` without
    /// acking them: a consumer that read and then died (or is stuck). Returns the entry count.
    pub async fn read_without_ack(&self, key: &str, group: &str, consumer: &str, count: usize) -> usize {
        let mut conn = self.conn().await;
        imticket::infra::redis::streams::create_group(&mut conn, key, group)
            .await
            .unwrap();
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query_async(&mut conn)
            .await
            .unwrap();
        format!("{reply:?}").matches("event_id").count()
    }

    /// Ids of the group's pending entries, oldest first.
    pub async fn pending_ids(&self, key: &str, group: &str) -> Vec<String> {
        let reply: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(10_000)
            .query_async(&mut self.conn().await)
            .await
            .unwrap();
        reply.into_iter().map(|(id, _, _, _)| id).collect()
    }

    pub async fn xlen(&self, key: &str) -> i64 {
        redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }

    pub fn command(&self, binary: &str) -> Command {
        let mut cmd = crate::helpers::binary_command(binary, &self.env);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs `imticket-admin` with this deployment's environment; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let output = self.command(ADMIN).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "imticket-admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// Rounds until one reads, reclaims and removes nothing; returns the summed report.
pub async fn drain<H: Handler>(consumer: &mut Consumer<H>) -> BatchReport {
    let mut total = BatchReport::default();
    loop {
        let report = consumer.process_batch().await.unwrap();
        total.read += report.read;
        total.reclaimed += report.reclaimed;
        total.acked += report.acked;
        total.retried += report.retried;
        total.dead_lettered += report.dead_lettered;
        total.deleted += report.deleted;
        if report.is_idle() {
            return total;
        }
    }
}

/// Polls `check` every 50 ms until it is true; panics after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::helpers::eventually(what, timeout, check).await
}

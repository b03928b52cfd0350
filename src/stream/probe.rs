//! Diagnostic handlers for `imticket-bench` and the crash tests: they drive the real consumer
//! runtime with a no-op, or with a countable PostgreSQL effect whose duplicates would show.
//! Not used by any production role.

use std::time::Duration;

use crate::infra::postgres::Db;
use anyhow::Context;
use uuid::Uuid;

use super::handler::{Handler, Outcome};
use crate::events::Envelope;
use crate::infra::postgres::processed_events;

/// Acks everything: measures the runtime and Redis, nothing else.
pub struct NoopHandler;

impl Handler for NoopHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        vec![Outcome::Ack; batch.len()]
    }
}

/// An idempotent PostgreSQL handler: in one transaction per batch it records the events in
/// `processed_events` and, for the ones not seen before, inserts one `probe_effects` row per
/// event and bumps a per-group counter. `probe_effects` has no unique constraint on purpose:
/// a double effect would show as a duplicate row.
pub struct ProbeHandler {
    db: Db,
    group: String,
    /// Simulated work per batch, to have handlers in flight when a test signals the process.
    delay: Duration,
}

impl ProbeHandler {
    pub fn new(db: Db, group: &str, delay: Duration) -> Self {
        Self {
            db,
            group: group.to_owned(),
            delay,
        }
    }

    /// Creates the probe tables. Runtime DDL: they belong to diagnostics, not to the product
    /// schema in `migrations/`, so they cannot be checked at compile time either.
    pub async fn install(db: &Db) -> anyhow::Result<()> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS probe_effects (
                 event_id uuid NOT NULL, consumer_group text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS probe_counters (consumer_group text PRIMARY KEY, applied bigint NOT NULL DEFAULT 0);",
        )
        .execute(db.pool())
        .await
        .context("create probe tables")?;
        Ok(())
    }

    async fn apply(&self, batch: &[Envelope]) -> anyhow::Result<()> {
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        let mut tx = self.db.begin().await.context("begin probe batch")?;
        let fresh = processed_events::record_new(&mut tx, &self.group, &ids).await?;
        let fresh: Vec<Uuid> = ids.into_iter().filter(|id| fresh.contains(id)).collect();
        if !fresh.is_empty() {
            // Runtime queries: the probe tables are created at run time (see `install`).
            sqlx::query("INSERT INTO probe_effects (event_id, consumer_group) SELECT unnest($1::uuid[]), $2")
                .bind(&fresh)
                .bind(&self.group)
                .execute(&mut *tx)
                .await
                .context("insert probe effects")?;
            sqlx::query(
                "INSERT INTO probe_counters (consumer_group, applied) VALUES ($1, $2)
                 ON CONFLICT (consumer_group) DO UPDATE SET applied = probe_counters.applied + EXCLUDED.applied",
            )
            .bind(&self.group)
            .bind(fresh.len() as i64)
            .execute(&mut *tx)
            .await
            .context("count probe effects")?;
        }
        tx.commit().await.context("commit probe batch")?;
        Ok(())
    }
}

impl Handler for ProbeHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match self.apply(batch).await {
            Ok(()) => vec![Outcome::Ack; batch.len()],
            Err(err) => vec![Outcome::failed(&err); batch.len()],
        }
    }
}

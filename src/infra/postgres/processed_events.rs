//! The record of which events each consumer group has processed: the idempotency of every
//! stream handler. Written in the same transaction as the handler's effect, so an event's
//! effect and its record commit together or not at all.

use std::collections::HashSet;

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records `event_ids` as processed by `group` and returns those that were not processed
/// before: the caller applies its effect for exactly these. A concurrent transaction
/// recording the same event blocks here until it commits (then the event is not returned)
/// or rolls back (then it is).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "processed_events.record_new"))]
pub async fn record_new(conn: &mut PgConnection, group: &str, event_ids: &[Uuid]) -> anyhow::Result<HashSet<Uuid>> {
    let fresh = sqlx::query_scalar!(
        "INSERT INTO processed_events (event_id, consumer_group)
         SELECT id, $2 FROM UNNEST($1::uuid[]) AS t(id)
         ON CONFLICT ON CONSTRAINT processed_events_pkey DO NOTHING
         RETURNING event_id",
        event_ids,
        group
    )
    .fetch_all(conn)
    .await
    .context("record processed events")?;
    let fresh: HashSet<Uuid> = fresh.into_iter().collect();
    // A redelivery (a reclaim after a crash, a publish repeated by the relay): absorbed here.
    for duplicate in event_ids.iter().filter(|id| !fresh.contains(id)) {
        metrics::counter!("stream_duplicates_total", "group" => group.to_owned()).increment(1);
        tracing::info!(group, event_id = %duplicate, "duplicate delivery absorbed");
    }
    Ok(fresh)
}

/// Deletes up to `limit` records older than `before`, oldest first; returns how many. One
/// short statement per call, so pruning a large backlog never holds many locks for long:
/// call it again while it returns `limit`. Rows another pruner is deleting are skipped
/// (`SKIP LOCKED`), so concurrent pruners share the work instead of queueing on it. The
/// rows are found through `processed_events_processed_at_idx` and deleted by `ctid` (a TID
/// scan; records are never updated, and the lock keeps the row where it is).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "processed_events.prune"))]
pub async fn prune(conn: &mut PgConnection, before: chrono::DateTime<chrono::Utc>, limit: i64) -> anyhow::Result<u64> {
    let result = sqlx::query!(
        "DELETE FROM processed_events WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM processed_events WHERE processed_at < $1
             ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
        before,
        limit
    )
    .execute(conn)
    .await
    .context("prune processed events")?;
    Ok(result.rows_affected())
}

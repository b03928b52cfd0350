//! The transactional outbox: events written in the transaction of the state change that
//! caused them ([`append`]), published to Redis after commit by the use case
//! ([`crate::infra::publisher::Publisher::publish_now`]) or later by the `outbox-relay` role
//! ([`crate::infra::publisher::publish_oldest`]).

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::{Envelope, Event, Stream};

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: Uuid,
    /// Logical stream name (`payments`), without the deployment's key prefix.
    pub stream: String,
    pub event_type: String,
    pub version: i32,
    pub payload: Value,
    pub trace_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

struct NewEvent<'a> {
    pub event_id: Uuid,
    pub stream: &'a str,
    pub event_type: &'a str,
    pub version: i32,
    pub payload: &'a Value,
    pub trace_id: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
}

/// Writes `event` to the outbox in the caller's transaction; returns its outbox id, to hand to
/// [`Publisher::publish_now`] after the commit.
pub async fn append<E: Event>(conn: &mut PgConnection, event: &E) -> anyhow::Result<i64> {
    append_envelope(conn, E::STREAM, &crate::events::encode(event)?).await
}

/// As [`append`], for an envelope built by hand (diagnostics and benchmarks).
pub async fn append_envelope(conn: &mut PgConnection, stream: Stream, envelope: &Envelope) -> anyhow::Result<i64> {
    insert(
        conn,
        &NewEvent {
            event_id: envelope.event_id,
            stream: stream.name(),
            event_type: &envelope.event_type,
            version: i32::try_from(envelope.version).unwrap_or(i32::MAX),
            payload: &envelope.payload,
            trace_id: envelope.trace_id.as_deref(),
            occurred_at: envelope.occurred_at,
        },
    )
    .await
}

/// Writes `events` to the outbox in the caller's transaction in one statement; returns their
/// outbox ids (in no particular order), to hand to the publisher after the commit.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.insert_many"))]
pub async fn append_many<E: Event>(conn: &mut PgConnection, events: &[E]) -> anyhow::Result<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let n = events.len();
    let (mut event_ids, mut types, mut versions) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut payloads, mut trace_ids, mut occurred) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for event in events {
        let envelope = crate::events::encode(event)?;
        event_ids.push(envelope.event_id);
        types.push(envelope.event_type);
        versions.push(i32::try_from(envelope.version).unwrap_or(i32::MAX));
        payloads.push(envelope.payload);
        trace_ids.push(envelope.trace_id);
        occurred.push(envelope.occurred_at);
    }
    sqlx::query_scalar!(
        "INSERT INTO outbox (event_id, stream, event_type, version, payload, trace_id, occurred_at)
         SELECT t.event_id, $2, t.event_type, t.version, t.payload, t.trace_id, t.occurred_at
         FROM UNNEST($1::uuid[], $3::text[], $4::int4[], $5::jsonb[], $6::text[], $7::timestamptz[])
              AS t(event_id, event_type, version, payload, trace_id, occurred_at)
         RETURNING id",
        &event_ids,
        E::STREAM.name(),
        &types,
        &versions,
        &payloads,
        // Text with NULLs: the macro knows text[] as strings only.
        &trace_ids as _,
        &occurred,
    )
    .fetch_all(conn)
    .await
    .context("insert outbox events")
}

impl OutboxRow {
    pub fn envelope(&self) -> Envelope {
        Envelope {
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            version: u32::try_from(self.version).unwrap_or(0),
            occurred_at: self.occurred_at,
            payload: self.payload.clone(),
            trace_id: self.trace_id.clone(),
        }
    }
}

/// Writes one event in the caller's transaction; returns its outbox id.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.insert"))]
async fn insert(conn: &mut PgConnection, event: &NewEvent<'_>) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO outbox (event_id, stream, event_type, version, payload, trace_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        event.event_id,
        event.stream,
        event.event_type,
        event.version,
        event.payload,
        event.trace_id,
        event.occurred_at,
    )
    .fetch_one(conn)
    .await
    .context("insert outbox event")
}

/// The unpublished rows: how many, and the oldest one's time. Only the unpublished rows' partial
/// index is read, so the cost follows the backlog, not the published rows kept for the
/// retention period (which [`status`] counts too: an operator's command, not every relay round).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.backlog"))]
pub async fn backlog(conn: &mut PgConnection) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "unpublished!", min(occurred_at) AS oldest_unpublished_at
           FROM outbox WHERE published_at IS NULL"#
    )
    .fetch_one(conn)
    .await
    .context("outbox backlog")?;
    Ok((row.unpublished, row.oldest_unpublished_at))
}

/// Locks up to `limit` unpublished rows, oldest first, skipping rows another relay holds.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.claim_unpublished"))]
pub async fn claim_unpublished(conn: &mut PgConnection, limit: i64) -> anyhow::Result<Vec<OutboxRow>> {
    sqlx::query_as!(
        OutboxRow,
        "SELECT id, event_id, stream, event_type, version, payload, trace_id, occurred_at
         FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(conn)
    .await
    .context("claim unpublished outbox rows")
}

/// Locks the given rows if they are still unpublished (the fast path after a commit).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.claim_ids"))]
pub async fn claim_ids(conn: &mut PgConnection, ids: &[i64]) -> anyhow::Result<Vec<OutboxRow>> {
    sqlx::query_as!(
        OutboxRow,
        "SELECT id, event_id, stream, event_type, version, payload, trace_id, occurred_at
         FROM outbox WHERE id = ANY($1) AND published_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED",
        ids
    )
    .fetch_all(conn)
    .await
    .context("claim outbox rows by id")
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.mark_published"))]
pub async fn mark_published(conn: &mut PgConnection, ids: &[i64], stream_ids: &[String]) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE outbox SET published_at = now(), stream_id = p.stream_id, attempts = attempts + 1
         FROM UNNEST($1::bigint[], $2::text[]) AS p(id, stream_id) WHERE outbox.id = p.id",
        ids,
        stream_ids
    )
    .execute(conn)
    .await
    .context("mark outbox rows published")?;
    Ok(())
}

/// Deletes published rows older than `before`, at most `limit` per call (short transactions).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.prune_published"))]
pub async fn prune_published(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> anyhow::Result<u64> {
    let result = sqlx::query!(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox WHERE published_at < $1 ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        before,
        limit
    )
    .execute(conn)
    .await
    .context("prune published outbox rows")?;
    Ok(result.rows_affected())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxStatus {
    pub unpublished: i64,
    pub oldest_unpublished_at: Option<DateTime<Utc>>,
    pub published_retained: i64,
    pub last_published_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.status"))]
pub async fn status(conn: &mut PgConnection) -> anyhow::Result<OutboxStatus> {
    let row = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS "unpublished!",
             (SELECT min(occurred_at) FROM outbox WHERE published_at IS NULL) AS oldest_unpublished_at,
             (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL) AS "published_retained!",
             (SELECT max(published_at) FROM outbox) AS last_published_at"#
    )
    .fetch_one(conn)
    .await
    .context("outbox status")?;
    Ok(OutboxStatus {
        unpublished: row.unpublished,
        oldest_unpublished_at: row.oldest_unpublished_at,
        published_retained: row.published_retained,
        last_published_at: row.last_published_at,
    })
}

/// Marks unpublished again every published row whose event one of the groups that must read
/// its stream (`streams[i]` is read by `groups[i]`) has not recorded as processed, except `keep` (the
/// events in the dead-letter stream): after a Redis restart that may have lost entries, the
/// relay publishes them again. Returns how many.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.unpublish_unprocessed"))]
pub async fn unpublish_unprocessed(
    conn: &mut PgConnection,
    streams: &[String],
    groups: &[String],
    keep: &[uuid::Uuid],
) -> anyhow::Result<u64> {
    let result = sqlx::query!(
        "UPDATE outbox o SET published_at = NULL, stream_id = NULL
         WHERE o.published_at IS NOT NULL
           AND o.event_id <> ALL($3::uuid[])
           AND EXISTS (
               SELECT 1 FROM UNNEST($1::text[], $2::text[]) AS g(stream, consumer_group)
               WHERE g.stream = o.stream AND NOT EXISTS (
                   SELECT 1 FROM processed_events p
                   WHERE p.consumer_group = g.consumer_group AND p.event_id = o.event_id))",
        streams,
        groups,
        keep
    )
    .execute(conn)
    .await
    .context("unpublish unprocessed outbox rows")?;
    Ok(result.rows_affected())
}

/// The Redis the relays saw last (`redis_epochs`), if any.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.latest_redis"))]
pub async fn latest_redis(conn: &mut PgConnection) -> anyhow::Result<Option<String>> {
    let run_id = sqlx::query_scalar!("SELECT run_id FROM redis_epochs ORDER BY last_seen_at DESC LIMIT 1")
        .fetch_optional(conn)
        .await
        .context("latest Redis epoch")?;
    Ok(run_id)
}

/// Records that the Redis `run_id` is the one being published to, now.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "outbox.saw_redis"))]
pub async fn saw_redis(conn: &mut PgConnection, run_id: &str) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO redis_epochs (run_id) VALUES ($1)
         ON CONFLICT (run_id) DO UPDATE SET last_seen_at = now()",
        run_id
    )
    .execute(conn)
    .await
    .context("record Redis epoch")?;
    Ok(())
}

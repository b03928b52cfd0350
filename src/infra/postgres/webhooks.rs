//! Webhook endpoints, deliveries and attempts (migration `20261203000003`).

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// An endpoint as an admin sees it (never its secrets).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    /// Set when the endpoint answered 410 Gone: it gets nothing more.
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    url: &str,
    event_types: &[String],
    description: &str,
    secret: &str,
) -> anyhow::Result<Endpoint> {
    sqlx::query_as!(
        Endpoint,
        "INSERT INTO webhook_endpoints (id, url, event_types, description, secret) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, url, event_types, description, disabled_at, disabled_reason, created_at",
        id,
        url,
        event_types,
        description,
        secret
    )
    .fetch_one(conn)
    .await
    .context("insert webhook endpoint")
}

pub async fn endpoints(conn: &mut PgConnection) -> anyhow::Result<Vec<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        "SELECT id, url, event_types, description, disabled_at, disabled_reason, created_at
         FROM webhook_endpoints ORDER BY created_at, id"
    )
    .fetch_all(conn)
    .await
    .context("webhook endpoints")
}

pub async fn endpoint(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        "SELECT id, url, event_types, description, disabled_at, disabled_reason, created_at
         FROM webhook_endpoints WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("webhook endpoint")
}

pub async fn delete_endpoint(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let done = sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id)
        .execute(conn)
        .await
        .context("delete webhook endpoint")?;
    Ok(done.rows_affected() > 0)
}

/// Replaces the secret; the old one keeps signing until `previous_valid_until`.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    id: Uuid,
    secret: &str,
    previous_valid_until: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query!(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_valid_until = $3, secret = $2 WHERE id = $1",
        id,
        secret,
        previous_valid_until
    )
    .execute(conn)
    .await
    .context("rotate webhook secret")?;
    Ok(done.rows_affected() > 0)
}

/// Skips the due webhook reminders whose hold was paid, cancelled or ran out first; returns how
/// many. Run in the transaction that then leases the due deliveries.
pub async fn skip_settled_reminders(conn: &mut PgConnection) -> anyhow::Result<u64> {
    let done = sqlx::query!(
        "UPDATE webhook_deliveries d SET status = 'skipped', last_error = 'the hold was settled before the reminder was due'
         FROM reservations r
         WHERE d.while_held IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at <= now()
           AND d.while_held = r.id AND (r.status <> 'held' OR r.expires_at <= now())"
    )
    .execute(conn)
    .await
    .context("skip settled webhook reminders")?;
    Ok(done.rows_affected())
}

/// A delivery leased for sending, with what signing it takes.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub endpoint_id: Uuid,
    pub url: String,
    pub body: Value,
    /// Attempts made before this one.
    pub attempts: i32,
    pub secret: String,
    pub previous_secret: Option<String>,
}

/// Leases up to `limit` due deliveries for `lease` (their `next_attempt_at` moves on, so no
/// other dispatcher takes them meanwhile; a dispatcher that dies leaves them due again after
/// the lease). Deliveries of a disabled endpoint are failed instead.
pub async fn lease_due(conn: &mut PgConnection, limit: i64, lease: std::time::Duration) -> anyhow::Result<Vec<Due>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    sqlx::query_as!(
        Due,
        r#"WITH due AS (
               SELECT d.id FROM webhook_deliveries d
               WHERE d.status = 'pending' AND d.next_attempt_at <= now()
               ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED),
           leased AS (
               UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0)
               FROM due WHERE d.id = due.id
               RETURNING d.id, d.endpoint_id, d.body, d.attempts)
           SELECT l.id AS "id!", l.endpoint_id AS "endpoint_id!", e.url AS "url!", l.body AS "body!", l.attempts AS "attempts!",
                  e.secret AS "secret!",
                  CASE WHEN e.previous_valid_until > now() THEN e.previous_secret END AS previous_secret
           FROM leased l JOIN webhook_endpoints e ON e.id = l.endpoint_id"#,
        limit,
        lease_ms
    )
    .fetch_all(conn)
    .await
    .context("lease due webhook deliveries")
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// No more attempts (the schedule is spent, or the endpoint is gone).
    Failed,
}

/// Records attempt `attempt` of `delivery` and what follows from it.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    conn: &mut PgConnection,
    delivery: &str,
    attempt: i32,
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<&str>,
    settled: &Settled,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, latency_ms, error) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ON CONSTRAINT webhook_attempts_pkey DO NOTHING",
        delivery,
        attempt,
        status_code,
        latency_ms,
        error
    )
    .execute(&mut *conn)
    .await
    .context("record webhook attempt")?;
    let (status, next): (&str, Option<DateTime<Utc>>) = match settled {
        Settled::Delivered => ("delivered", None),
        Settled::Retry(at) => ("pending", Some(*at)),
        Settled::Failed => ("failed", None),
    };
    sqlx::query!(
        "UPDATE webhook_deliveries SET attempts = $2, status = $3, next_attempt_at = coalesce($4, next_attempt_at),
                last_status = $5, last_error = $6, delivered_at = CASE WHEN $3 = 'delivered' THEN now() END
         WHERE id = $1",
        delivery,
        attempt,
        status,
        next,
        status_code,
        error
    )
    .execute(conn)
    .await
    .context("settle webhook delivery")?;
    Ok(())
}

/// Disables an endpoint (410 Gone) and fails its pending deliveries.
pub async fn disable(conn: &mut PgConnection, endpoint: Uuid, reason: &str) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2 WHERE id = $1 AND disabled_at IS NULL",
        endpoint,
        reason
    )
    .execute(&mut *conn)
    .await
    .context("disable webhook endpoint")?;
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $2 WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint,
        reason
    )
    .execute(conn)
    .await
    .context("fail a disabled endpoint's deliveries")?;
    Ok(())
}

/// One delivery with its attempts, newest first: the log an admin reads.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// The `webhook-id` of every attempt.
    pub id: String,
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `delivered`, `failed`, or `skipped` (a reminder whose hold was settled first).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub log: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// The endpoint's latest `limit` deliveries, newest first, each with its attempts.
pub async fn deliveries(conn: &mut PgConnection, endpoint: Uuid, limit: i64) -> anyhow::Result<Vec<Delivery>> {
    let rows = sqlx::query!(
        "SELECT id, event_id, event_type, status, attempts, next_attempt_at, last_status, last_error, delivered_at, created_at
         FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at DESC, id LIMIT $2",
        endpoint,
        limit
    )
    .fetch_all(&mut *conn)
    .await
    .context("webhook deliveries")?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let attempts = sqlx::query!(
        "SELECT delivery_id, attempt, at, status_code, latency_ms, error FROM webhook_attempts
         WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
        &ids
    )
    .fetch_all(conn)
    .await
    .context("webhook attempts")?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            log: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| Attempt {
                    attempt: a.attempt,
                    at: a.at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                })
                .collect(),
            next_attempt_at: (r.status == "pending").then_some(r.next_attempt_at),
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            last_status: r.last_status,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
            created_at: r.created_at,
        })
        .collect())
}

/// Deliveries due and not yet delivered (the backlog metric).
pub async fn backlog(conn: &mut PgConnection) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()"#
    )
    .fetch_one(conn)
    .await
    .context("webhook backlog")
}

/// One notice to deliver to every endpoint that subscribes to its type.
pub struct NewDelivery {
    pub event_id: Uuid,
    pub event_type: String,
    pub body: Value,
    pub due_at: DateTime<Utc>,
    pub while_held: Option<Uuid>,
}

/// Queues each notice for every endpoint subscribed to its type (not disabled), one statement
/// for all of them; a notice already queued for an endpoint adds nothing.
pub async fn enqueue_many(conn: &mut PgConnection, notices: &[NewDelivery]) -> anyhow::Result<u64> {
    if notices.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = notices.iter().map(|n| n.event_id).collect();
    let types: Vec<&str> = notices.iter().map(|n| n.event_type.as_str()).collect();
    let bodies: Vec<String> = notices.iter().map(|n| n.body.to_string()).collect();
    let dues: Vec<DateTime<Utc>> = notices.iter().map(|n| n.due_at).collect();
    let held: Vec<Option<Uuid>> = notices.iter().map(|n| n.while_held).collect();
    let done = sqlx::query!(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, next_attempt_at, while_held)
         SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.id, t.event_id, t.event_type, t.body::jsonb,
                t.due, t.held
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[])
              AS t(event_id, event_type, body, due, held)
         JOIN webhook_endpoints e
           ON e.disabled_at IS NULL AND (t.event_type = ANY(e.event_types) OR '*' = ANY(e.event_types))
         ON CONFLICT ON CONSTRAINT webhook_deliveries_event_key DO NOTHING",
        &ids,
        &types as &[&str],
        &bodies,
        &dues,
        &held as &[Option<Uuid>]
    )
    .execute(conn)
    .await
    .context("enqueue webhook deliveries")?;
    Ok(done.rows_affected())
}

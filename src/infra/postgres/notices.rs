//! Fans' notification preferences and the email deliveries (migration `20261203000004`).

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::notice::Preferences;

/// The fan's preferences (the default when never set).
pub async fn preferences(conn: &mut PgConnection, user: Uuid) -> anyhow::Result<Preferences> {
    let row = sqlx::query!(
        "SELECT email, webhook, muted FROM notification_preferences WHERE user_id = $1",
        user
    )
    .fetch_optional(conn)
    .await
    .context("notification preferences")?;
    Ok(row.map_or_else(Preferences::default, |r| Preferences {
        email: r.email,
        webhook: r.webhook,
        muted: r.muted,
    }))
}

pub async fn set_preferences(conn: &mut PgConnection, user: Uuid, p: &Preferences) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO notification_preferences (user_id, email, webhook, muted) VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT notification_preferences_pkey
         DO UPDATE SET email = $2, webhook = $3, muted = $4, updated_at = now()",
        user,
        p.email,
        p.webhook,
        &p.muted
    )
    .execute(conn)
    .await
    .context("set notification preferences")?;
    Ok(())
}

/// What a mail about one event says: the fan, the concert and its date, the seats.
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    pub email: String,
    pub name: String,
    pub concert: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub seats: Vec<String>,
}

/// Looks up what the mail needs; `None` when the user is gone.
pub async fn context(
    conn: &mut PgConnection,
    user: Uuid,
    concert: Option<Uuid>,
    schedule: Option<Uuid>,
    seats: &[Uuid],
) -> anyhow::Result<Option<MailContext>> {
    let row = sqlx::query!(
        r#"SELECT u.email, u.name, c.title AS "concert?", s.starts_at AS "starts_at?",
                  coalesce((SELECT array_agg(se.section || ', row ' || se.row_number || ', seat ' || se.seat_number
                                             ORDER BY se.section, se.row_number, se.seat_number)
                            FROM seats se WHERE se.id = ANY($4)), '{}') AS "seats!"
           FROM users u
           LEFT JOIN schedules s ON s.id = $3
           LEFT JOIN concerts c ON c.id = coalesce($2, s.concert_id)
           WHERE u.id = $1"#,
        user,
        concert,
        schedule,
        seats
    )
    .fetch_optional(conn)
    .await
    .context("mail context")?;
    Ok(row.map(|r| MailContext {
        email: r.email,
        name: r.name,
        concert: r.concert,
        starts_at: r.starts_at,
        seats: r.seats,
    }))
}

/// Queues one mail; a mail with the same id (the dedupe key) already queued adds nothing.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue_email(
    conn: &mut PgConnection,
    id: &str,
    user: Uuid,
    notice: &str,
    recipient: &str,
    context: &Value,
    due_at: DateTime<Utc>,
    while_held: Option<Uuid>,
) -> anyhow::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO email_deliveries (id, user_id, notice, recipient, context, next_attempt_at, while_held)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT email_deliveries_pkey DO NOTHING",
        id,
        user,
        notice,
        recipient,
        context,
        due_at,
        while_held
    )
    .execute(conn)
    .await
    .context("enqueue email")?;
    Ok(done.rows_affected() > 0)
}

/// A mail leased for sending.
#[derive(Debug, Clone)]
pub struct DueMail {
    pub id: String,
    pub notice: String,
    pub recipient: String,
    pub context: Value,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// Skips the due mail reminders whose hold was paid, cancelled or ran out first; returns how
/// many. Run in the transaction that then leases the due mails.
pub async fn skip_settled_mail_reminders(conn: &mut PgConnection) -> anyhow::Result<u64> {
    let done = sqlx::query!(
        "UPDATE email_deliveries d SET status = 'skipped', last_error = 'the hold was settled before the reminder was due'
         FROM reservations r
         WHERE d.while_held = r.id AND d.status = 'pending' AND d.next_attempt_at <= now()
           AND (r.status <> 'held' OR r.expires_at <= now())"
    )
    .execute(conn)
    .await
    .context("skip settled mail reminders")?;
    Ok(done.rows_affected())
}

/// Leases up to `limit` due mails for `lease` (as webhook deliveries are leased).
pub async fn lease_due_mail(
    conn: &mut PgConnection,
    limit: i64,
    lease: std::time::Duration,
) -> anyhow::Result<Vec<DueMail>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    sqlx::query_as!(
        DueMail,
        r#"WITH due AS (
               SELECT id FROM email_deliveries
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           UPDATE email_deliveries d SET next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0)
           FROM due WHERE d.id = due.id
           RETURNING d.id, d.notice, d.recipient, d.context, d.attempts"#,
        limit,
        lease_ms
    )
    .fetch_all(conn)
    .await
    .context("lease due mail")
}

/// What one attempt at a mail came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailSettled {
    Sent,
    Retry(DateTime<Utc>, String),
    Failed(String),
}

pub async fn record_mail(conn: &mut PgConnection, id: &str, attempt: i32, settled: &MailSettled) -> anyhow::Result<()> {
    let (status, next, error): (&str, Option<DateTime<Utc>>, Option<&str>) = match settled {
        MailSettled::Sent => ("sent", None, None),
        MailSettled::Retry(at, why) => ("pending", Some(*at), Some(why)),
        MailSettled::Failed(why) => ("failed", None, Some(why)),
    };
    sqlx::query!(
        "UPDATE email_deliveries SET attempts = $2, status = $3, next_attempt_at = coalesce($4, next_attempt_at),
                last_error = $5, sent_at = CASE WHEN $3 = 'sent' THEN now() END
         WHERE id = $1",
        id,
        attempt,
        status,
        next,
        error
    )
    .execute(conn)
    .await
    .context("settle email delivery")?;
    Ok(())
}

/// Mails due and not yet sent (the backlog metric).
pub async fn mail_backlog(conn: &mut PgConnection) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM email_deliveries WHERE status = 'pending' AND next_attempt_at <= now()"#
    )
    .fetch_one(conn)
    .await
    .context("email backlog")
}

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
         WHERE d.while_held IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at <= now()
           AND d.while_held = r.id AND (r.status <> 'held' OR r.expires_at <= now())"
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

/// Several fans' preferences in one query; a fan who never chose has the defaults.
pub async fn preferences_of(
    conn: &mut PgConnection,
    users: &[Uuid],
) -> anyhow::Result<std::collections::HashMap<Uuid, Preferences>> {
    let rows = sqlx::query!(
        "SELECT user_id, email, webhook, muted FROM notification_preferences WHERE user_id = ANY($1)",
        users
    )
    .fetch_all(conn)
    .await
    .context("notification preferences")?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.user_id,
                Preferences {
                    email: r.email,
                    webhook: r.webhook,
                    muted: r.muted,
                },
            )
        })
        .collect())
}

/// What mails about several events need, in four queries: the fans, the schedules with their
/// concerts, the concerts named alone, the seats.
pub struct MailFacts {
    users: std::collections::HashMap<Uuid, (String, String)>,
    schedules: std::collections::HashMap<Uuid, (DateTime<Utc>, Uuid)>,
    concerts: std::collections::HashMap<Uuid, String>,
    seats: std::collections::HashMap<Uuid, (String, i32, i32)>,
}

impl MailFacts {
    pub async fn load(
        conn: &mut PgConnection,
        users: &[Uuid],
        concerts: &[Uuid],
        schedules: &[Uuid],
        seats: &[Uuid],
    ) -> anyhow::Result<Self> {
        let users = sqlx::query!("SELECT id, email, name FROM users WHERE id = ANY($1)", users)
            .fetch_all(&mut *conn)
            .await
            .context("mail users")?
            .into_iter()
            .map(|r| (r.id, (r.email, r.name)))
            .collect();
        let schedule_rows = sqlx::query!(
            "SELECT id, starts_at, concert_id FROM schedules WHERE id = ANY($1)",
            schedules
        )
        .fetch_all(&mut *conn)
        .await
        .context("mail schedules")?;
        let mut concert_ids: Vec<Uuid> = concerts.to_vec();
        concert_ids.extend(schedule_rows.iter().map(|r| r.concert_id));
        let schedules = schedule_rows
            .into_iter()
            .map(|r| (r.id, (r.starts_at, r.concert_id)))
            .collect();
        let concerts = sqlx::query!("SELECT id, title FROM concerts WHERE id = ANY($1)", &concert_ids)
            .fetch_all(&mut *conn)
            .await
            .context("mail concerts")?
            .into_iter()
            .map(|r| (r.id, r.title))
            .collect();
        let seats = sqlx::query!(
            "SELECT id, section, row_number, seat_number FROM seats WHERE id = ANY($1)",
            seats
        )
        .fetch_all(&mut *conn)
        .await
        .context("mail seats")?
        .into_iter()
        .map(|r| (r.id, (r.section, r.row_number, r.seat_number)))
        .collect();
        Ok(Self {
            users,
            schedules,
            concerts,
            seats,
        })
    }

    /// One mail's context; `None` when the user is gone.
    pub fn context(
        &self,
        user: Uuid,
        concert: Option<Uuid>,
        schedule: Option<Uuid>,
        seats: &[Uuid],
    ) -> Option<MailContext> {
        let (email, name) = self.users.get(&user)?.clone();
        let scheduled = schedule.and_then(|s| self.schedules.get(&s));
        let concert = concert
            .or(scheduled.map(|(_, c)| *c))
            .and_then(|c| self.concerts.get(&c).cloned());
        let mut places: Vec<&(String, i32, i32)> = seats.iter().filter_map(|s| self.seats.get(s)).collect();
        places.sort();
        Some(MailContext {
            email,
            name,
            concert,
            starts_at: scheduled.map(|(at, _)| *at),
            seats: places
                .into_iter()
                .map(|(section, row, number)| format!("{section}, row {row}, seat {number}"))
                .collect(),
        })
    }
}

/// One mail to queue.
pub struct NewMail {
    pub id: String,
    pub user: Uuid,
    pub notice: String,
    pub recipient: String,
    pub context: Value,
    pub due_at: DateTime<Utc>,
    pub while_held: Option<Uuid>,
}

/// Queues mails in one statement; one whose id (the dedupe key) is queued already adds nothing.
pub async fn enqueue_emails(conn: &mut PgConnection, mails: &[NewMail]) -> anyhow::Result<u64> {
    if mails.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = mails.iter().map(|m| m.id.as_str()).collect();
    let users: Vec<Uuid> = mails.iter().map(|m| m.user).collect();
    let notices: Vec<&str> = mails.iter().map(|m| m.notice.as_str()).collect();
    let recipients: Vec<&str> = mails.iter().map(|m| m.recipient.as_str()).collect();
    let contexts: Vec<String> = mails.iter().map(|m| m.context.to_string()).collect();
    let dues: Vec<DateTime<Utc>> = mails.iter().map(|m| m.due_at).collect();
    let held: Vec<Option<Uuid>> = mails.iter().map(|m| m.while_held).collect();
    let done = sqlx::query!(
        "INSERT INTO email_deliveries (id, user_id, notice, recipient, context, next_attempt_at, while_held)
         SELECT t.id, t.user_id, t.notice, t.recipient, t.context::jsonb, t.due, t.held
         FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::uuid[])
              AS t(id, user_id, notice, recipient, context, due, held)
         ON CONFLICT ON CONSTRAINT email_deliveries_pkey DO NOTHING",
        &ids as &[&str],
        &users,
        &notices as &[&str],
        &recipients as &[&str],
        &contexts,
        &dues,
        &held as &[Option<Uuid>]
    )
    .execute(conn)
    .await
    .context("enqueue emails")?;
    Ok(done.rows_affected())
}

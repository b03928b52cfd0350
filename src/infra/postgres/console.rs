//! What the operator console reads and writes in PostgreSQL: its sessions, its audit log of
//! actions, and the current rows a dead letter or an audit finding points at, and the sales
//! figures of its pages. Read-only except for sessions and actions.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A live session's account.
pub struct SessionRow {
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub csrf_token: String,
}

pub async fn insert_session(
    conn: &mut PgConnection,
    secret_hash: &[u8],
    user_id: Uuid,
    csrf_token: &str,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    // Expired sessions of anyone go at each log-in: the table never grows past the live ones
    // and those of the last hours.
    sqlx::query!("DELETE FROM console_sessions WHERE expires_at < now()")
        .execute(&mut *conn)
        .await
        .context("delete expired console sessions")?;
    sqlx::query!(
        "INSERT INTO console_sessions (secret_hash, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
        secret_hash,
        user_id,
        csrf_token,
        expires_at
    )
    .execute(conn)
    .await
    .context("insert console session")?;
    Ok(())
}

pub async fn find_session(conn: &mut PgConnection, secret_hash: &[u8]) -> anyhow::Result<Option<SessionRow>> {
    sqlx::query_as!(
        SessionRow,
        "SELECT s.user_id, u.email, u.role, s.csrf_token
         FROM console_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.secret_hash = $1 AND s.expires_at > now()",
        secret_hash
    )
    .fetch_optional(conn)
    .await
    .context("find console session")
}

pub async fn delete_session(conn: &mut PgConnection, secret_hash: &[u8]) -> anyhow::Result<()> {
    sqlx::query!("DELETE FROM console_sessions WHERE secret_hash = $1", secret_hash)
        .execute(conn)
        .await
        .context("delete console session")?;
    Ok(())
}

/// One entry of the console's audit log.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub admin_id: Uuid,
    pub admin_email: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: serde_json::Value,
}

pub async fn record_action(
    conn: &mut PgConnection,
    admin_id: Uuid,
    action: &str,
    target: &str,
    outcome: &str,
    detail: &serde_json::Value,
) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO console_actions (id, admin_id, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        admin_id,
        action,
        target,
        outcome,
        detail
    )
    .execute(conn)
    .await
    .context("record console action")?;
    Ok(id)
}

/// The newest actions first; `before`: the id of the last one of the previous page (ids are
/// UUIDv7, ordered by time).
pub async fn actions(conn: &mut PgConnection, before: Option<Uuid>, limit: i64) -> anyhow::Result<Vec<ActionRow>> {
    sqlx::query_as!(
        ActionRow,
        r#"SELECT a.id, a.at, a.admin_id, u.email AS "admin_email?", a.action, a.target, a.outcome, a.detail
           FROM console_actions a LEFT JOIN users u ON u.id = a.admin_id
           WHERE $1::uuid IS NULL OR a.id < $1
           ORDER BY a.id DESC LIMIT $2"#,
        before,
        limit
    )
    .fetch_all(conn)
    .await
    .context("list console actions")
}

pub async fn action(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<ActionRow>> {
    sqlx::query_as!(
        ActionRow,
        r#"SELECT a.id, a.at, a.admin_id, u.email AS "admin_email?", a.action, a.target, a.outcome, a.detail
           FROM console_actions a LEFT JOIN users u ON u.id = a.admin_id WHERE a.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
    .context("console action")
}

/// A reservation as it is now, with its payment if any.
#[derive(Debug, Clone, Serialize)]
pub struct ReservationState {
    pub id: Uuid,
    pub user_id: Uuid,
    pub schedule_id: Uuid,
    pub status: String,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
    pub ticket_code: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub payment_id: Option<Uuid>,
    pub payment_status: Option<String>,
    pub seats: i64,
}

pub async fn reservations(conn: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<Vec<ReservationState>> {
    sqlx::query_as!(
        ReservationState,
        r#"SELECT r.id, r.user_id, r.schedule_id, r.status, r.amount, r.expires_at, r.ticket_code, r.updated_at,
                  p.id AS "payment_id?", p.status AS "payment_status?",
                  (SELECT count(*) FROM reservation_seats rs WHERE rs.reservation_id = r.id) AS "seats!"
           FROM reservations r LEFT JOIN payments p ON p.reservation_id = r.id
           WHERE r.id = ANY($1)"#,
        ids
    )
    .fetch_all(conn)
    .await
    .context("console reservations")
}

/// A payment as it is now.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentState {
    pub id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub amount: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn payments(conn: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<Vec<PaymentState>> {
    sqlx::query_as!(
        PaymentState,
        "SELECT id, reservation_id, user_id, amount, status, created_at FROM payments WHERE id = ANY($1)",
        ids
    )
    .fetch_all(conn)
    .await
    .context("console payments")
}

/// A background job as it is now.
#[derive(Debug, Clone, Serialize)]
pub struct JobState {
    pub id: Uuid,
    pub kind: String,
    pub schedule_id: Option<Uuid>,
    pub status: String,
    pub total: i32,
    pub done: i32,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn jobs(conn: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<Vec<JobState>> {
    sqlx::query_as!(
        JobState,
        "SELECT id, kind, schedule_id, status, total, done, error, updated_at FROM jobs WHERE id = ANY($1)",
        ids
    )
    .fetch_all(conn)
    .await
    .context("console jobs")
}

/// Which of `event_ids` `group` has processed (recorded in `processed_events`).
pub async fn processed(conn: &mut PgConnection, group: &str, event_ids: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT event_id FROM processed_events WHERE consumer_group = $1 AND event_id = ANY($2)",
        group,
        event_ids
    )
    .fetch_all(conn)
    .await
    .context("console processed events")
}

/// A schedule as the sales page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub concert_id: Uuid,
    pub title: String,
    pub starts_at: DateTime<Utc>,
}

/// Schedules, the soonest first, those of the past last.
pub async fn schedules(conn: &mut PgConnection, limit: i64) -> anyhow::Result<Vec<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        "SELECT s.id, s.concert_id, c.title, s.starts_at FROM schedules s JOIN concerts c ON c.id = s.concert_id
         ORDER BY s.starts_at < now(), s.starts_at, s.id LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
    .context("console schedules")
}

/// Seats of a schedule by state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeatCounts {
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

pub async fn seat_counts(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<SeatCounts> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "n!" FROM seats WHERE schedule_id = $1 GROUP BY status"#,
        schedule_id
    )
    .fetch_all(conn)
    .await
    .context("console seat counts")?;
    let mut counts = SeatCounts::default();
    for row in rows {
        match row.status.as_str() {
            "available" => counts.available = row.n,
            "held" => counts.held = row.n,
            _ => counts.sold += row.n,
        }
    }
    Ok(counts)
}

/// Seats left per schedule of a concert: (schedule, starts_at, available, all).
pub async fn seats_left(
    conn: &mut PgConnection,
    concert_id: Uuid,
) -> anyhow::Result<Vec<(Uuid, DateTime<Utc>, i64, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT s.id, s.starts_at,
                  (SELECT count(*) FROM seats WHERE schedule_id = s.id AND status = 'available') AS "available!",
                  (SELECT count(*) FROM seats WHERE schedule_id = s.id) AS "all!"
           FROM schedules s WHERE s.concert_id = $1 ORDER BY s.starts_at, s.id"#,
        concert_id
    )
    .fetch_all(conn)
    .await
    .context("console seats left")?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.starts_at, r.available, r.all))
        .collect())
}

/// Holds of a schedule placed in the last `minutes`, by what became of them.
pub async fn holds_by_outcome(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    minutes: i32,
) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "n!" FROM reservations
           WHERE schedule_id = $1 AND created_at > now() - make_interval(mins => $2)
           GROUP BY status ORDER BY status"#,
        schedule_id,
        minutes
    )
    .fetch_all(conn)
    .await
    .context("console holds by outcome")?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// Payments of a schedule per minute over the last `minutes` (oldest first; every minute
/// listed, 0 where none).
pub async fn payments_per_minute(conn: &mut PgConnection, schedule_id: Uuid, minutes: i32) -> anyhow::Result<Vec<i64>> {
    let rows = sqlx::query_scalar!(
        r#"SELECT count(p.id) AS "n!"
           FROM generate_series(0, $2 - 1) AS m(i)
           LEFT JOIN (payments p JOIN reservations r ON r.id = p.reservation_id AND r.schedule_id = $1)
             ON p.created_at >= date_trunc('minute', now()) - make_interval(mins => $2 - 1 - m.i)
            AND p.created_at <  date_trunc('minute', now()) - make_interval(mins => $2 - 2 - m.i)
           GROUP BY m.i ORDER BY m.i"#,
        schedule_id,
        minutes
    )
    .fetch_all(conn)
    .await
    .context("console payments per minute")?;
    Ok(rows)
}

/// How late the expiry is: the age of the oldest hold of the schedule that is past its
/// `expires_at` and not released yet (None: none is).
pub async fn expiry_lag(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<Option<f64>> {
    let lag = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM now() - min(expires_at))::float8 AS "lag"
           FROM reservations WHERE schedule_id = $1 AND status = 'held' AND expires_at < now()"#,
        schedule_id
    )
    .fetch_one(conn)
    .await
    .context("console expiry lag")?;
    Ok(lag)
}

/// How long fans of a concert admitted in the last `minutes` waited (join to admission):
/// (fans, median seconds, 95th percentile seconds).
pub async fn measured_wait(
    conn: &mut PgConnection,
    concert_id: Uuid,
    minutes: i32,
) -> anyhow::Result<(i64, Option<f64>, Option<f64>)> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "n!",
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM admitted_at - joined_at)) AS "p50",
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM admitted_at - joined_at)) AS "p95"
           FROM sales_funnel
           WHERE concert_id = $1 AND admitted_at > now() - make_interval(mins => $2) AND joined_at IS NOT NULL"#,
        concert_id,
        minutes
    )
    .fetch_one(conn)
    .await
    .context("console measured wait")?;
    Ok((row.n, row.p50, row.p95))
}

/// The title of each concert of `ids`.
pub async fn concert_titles(conn: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<Vec<(Uuid, String, bool)>> {
    let rows = sqlx::query!(
        r#"SELECT id, title, admission_paused_at IS NOT NULL AS "paused!" FROM concerts WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(conn)
    .await
    .context("console concert titles")?;
    Ok(rows.into_iter().map(|r| (r.id, r.title, r.paused)).collect())
}

/// Concerts whose admission an admin paused (shown even when their line is empty).
pub async fn paused_concerts(conn: &mut PgConnection) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM concerts WHERE admission_paused_at IS NOT NULL ORDER BY id LIMIT 1000")
        .fetch_all(conn)
        .await
        .context("console paused concerts")
}

/// The next concerts by their first schedule (for a page that has none open): (id, title).
pub async fn upcoming_concerts(conn: &mut PgConnection, limit: i64) -> anyhow::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        r#"SELECT c.id, c.title FROM concerts c JOIN schedules s ON s.concert_id = c.id
           WHERE s.starts_at > now() GROUP BY c.id ORDER BY min(s.starts_at), c.id LIMIT $1"#,
        limit
    )
    .fetch_all(conn)
    .await
    .context("console upcoming concerts")?;
    Ok(rows.into_iter().map(|r| (r.id, r.title)).collect())
}

/// A webhook endpoint and how its deliveries fare.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookHealth {
    pub id: Uuid,
    pub url: String,
    pub disabled: bool,
    pub pending: i64,
    pub failed: i64,
    pub delivered_last_hour: i64,
    pub oldest_pending_s: Option<f64>,
    pub last_error: Option<String>,
}

pub async fn webhook_health(conn: &mut PgConnection) -> anyhow::Result<Vec<WebhookHealth>> {
    sqlx::query_as!(
        WebhookHealth,
        r#"SELECT e.id, e.url, e.disabled_at IS NOT NULL AS "disabled!",
                  count(d.id) FILTER (WHERE d.status = 'pending') AS "pending!",
                  count(d.id) FILTER (WHERE d.status = 'failed') AS "failed!",
                  count(d.id) FILTER (WHERE d.status = 'delivered' AND d.delivered_at > now() - interval '1 hour') AS "delivered_last_hour!",
                  extract(epoch FROM now() - min(d.created_at) FILTER (WHERE d.status = 'pending'))::float8 AS "oldest_pending_s",
                  (SELECT last_error FROM webhook_deliveries x WHERE x.endpoint_id = e.id AND x.last_error IS NOT NULL
                   ORDER BY x.created_at DESC LIMIT 1) AS "last_error"
           FROM webhook_endpoints e LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id
           GROUP BY e.id ORDER BY e.created_at"#
    )
    .fetch_all(conn)
    .await
    .context("console webhook health")
}

/// Every row with this id, in whichever table has it (an id of a reservation, payment, seat,
/// schedule, concert, job, outbox event, user or wallet): (table, the row as JSON). A user's
/// password hash is never part of it.
pub async fn rows_with_id(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let rows = sqlx::query!(
        r#"SELECT 'reservation' AS "table!", to_jsonb(r) AS "row!" FROM reservations r WHERE r.id = $1
           UNION ALL SELECT 'payment', to_jsonb(p) FROM payments p WHERE p.id = $1
           UNION ALL SELECT 'seat', to_jsonb(s) FROM seats s WHERE s.id = $1
           UNION ALL SELECT 'schedule', to_jsonb(s) FROM schedules s WHERE s.id = $1
           UNION ALL SELECT 'concert', to_jsonb(c) FROM concerts c WHERE c.id = $1
           UNION ALL SELECT 'job', to_jsonb(j) - 'request' FROM jobs j WHERE j.id = $1
           UNION ALL SELECT 'outbox event', to_jsonb(o) FROM outbox o WHERE o.event_id = $1
           UNION ALL SELECT 'user', to_jsonb(u) - 'password_hash' FROM users u WHERE u.id = $1
           UNION ALL SELECT 'wallet', to_jsonb(w) FROM wallets w WHERE w.user_id = $1"#,
        id
    )
    .fetch_all(&mut *conn)
    .await
    .context("console rows with id")?;
    let mut out: Vec<(String, serde_json::Value)> = rows.into_iter().map(|r| (r.table, r.row)).collect();
    // A reservation's seats, a seat's reservations: the rows that explain an I1 finding.
    let links = sqlx::query!(
        r#"SELECT to_jsonb(rs) AS "row!" FROM reservation_seats rs WHERE rs.reservation_id = $1 OR rs.seat_id = $1
           ORDER BY rs.reservation_id LIMIT 50"#,
        id
    )
    .fetch_all(conn)
    .await
    .context("console reservation seats with id")?;
    out.extend(links.into_iter().map(|r| ("reservation seat".to_owned(), r.row)));
    Ok(out)
}

//! Sales statistics and settlement (migration `20261203000002`): what the `statistics` role's
//! handlers add up, and the reports read back. Every write is an additive upsert inside the
//! handler's transaction, beside its `processed_events` record.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// What a batch of events adds to one schedule's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub holds_placed: i64,
    pub seats_held: i64,
    pub holds_confirmed: i64,
    pub seats_sold: i64,
    pub revenue_points: i64,
    pub holds_expired: i64,
    pub seats_expired: i64,
}

/// Adds `add` to the totals of `schedule_id` (of `concert_id`; `None`: the schedule's own).
pub async fn add_totals(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    concert_id: Option<Uuid>,
    add: &Totals,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO sales_schedule_totals (schedule_id, concert_id, holds_placed, seats_held, holds_confirmed,
                                            seats_sold, revenue_points, holds_expired, seats_expired)
         SELECT id, coalesce($2, concert_id), $3, $4, $5, $6, $7, $8, $9 FROM schedules WHERE id = $1
         ON CONFLICT ON CONSTRAINT sales_schedule_totals_pkey DO UPDATE
         SET holds_placed = sales_schedule_totals.holds_placed + EXCLUDED.holds_placed,
             seats_held = sales_schedule_totals.seats_held + EXCLUDED.seats_held,
             holds_confirmed = sales_schedule_totals.holds_confirmed + EXCLUDED.holds_confirmed,
             seats_sold = sales_schedule_totals.seats_sold + EXCLUDED.seats_sold,
             revenue_points = sales_schedule_totals.revenue_points + EXCLUDED.revenue_points,
             holds_expired = sales_schedule_totals.holds_expired + EXCLUDED.holds_expired,
             seats_expired = sales_schedule_totals.seats_expired + EXCLUDED.seats_expired",
        schedule_id,
        concert_id,
        add.holds_placed,
        add.seats_held,
        add.holds_confirmed,
        add.seats_sold,
        add.revenue_points,
        add.holds_expired,
        add.seats_expired
    )
    .execute(conn)
    .await
    .context("add to a schedule's totals")?;
    Ok(())
}

/// The steps of a fan's way to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Joined,
    Admitted,
    Held,
    Paid,
}

/// When a fan first reached each step, as far as a batch of events says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    pub joined: Option<DateTime<Utc>>,
    pub admitted: Option<DateTime<Utc>>,
    pub held: Option<DateTime<Utc>>,
    pub paid: Option<DateTime<Utc>>,
}

impl Steps {
    /// Notes `step` at `at`; the earliest time counts.
    pub fn reached(&mut self, step: Step, at: DateTime<Utc>) {
        let slot = match step {
            Step::Joined => &mut self.joined,
            Step::Admitted => &mut self.admitted,
            Step::Held => &mut self.held,
            Step::Paid => &mut self.paid,
        };
        *slot = Some(slot.map_or(at, |t| t.min(at)));
    }
}

/// Notes the steps a fan reached (the earliest time of each counts).
pub async fn funnel(conn: &mut PgConnection, concert_id: Uuid, user_id: Uuid, steps: &Steps) -> anyhow::Result<()> {
    let Steps {
        joined,
        admitted,
        held,
        paid,
    } = *steps;
    sqlx::query!(
        "INSERT INTO sales_funnel (concert_id, user_id, joined_at, admitted_at, held_at, paid_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT sales_funnel_pkey DO UPDATE
         SET joined_at = LEAST(sales_funnel.joined_at, EXCLUDED.joined_at),
             admitted_at = LEAST(sales_funnel.admitted_at, EXCLUDED.admitted_at),
             held_at = LEAST(sales_funnel.held_at, EXCLUDED.held_at),
             paid_at = LEAST(sales_funnel.paid_at, EXCLUDED.paid_at)",
        concert_id,
        user_id,
        joined,
        admitted,
        held,
        paid
    )
    .execute(conn)
    .await
    .context("note a funnel step")?;
    Ok(())
}

/// Settles the payments of `reservations`: each one's payment is added to the settlement of
/// its UTC day and concert. Returns the points.
///
/// Read from `payments` (one per reservation, found by its unique index), not from the ledger:
/// the payment and its ledger row are written in one transaction with the same `now()` and
/// amount, and `point_transactions` has no index by reservation, so the ledger's rows were a
/// sequential scan per batch that grew with every charge and payment of the sale
/// (docs/PERFORMANCE.md, "The 20,000-fan on-sale").
pub async fn settle(conn: &mut PgConnection, reservations: &[Uuid]) -> anyhow::Result<i64> {
    let points = sqlx::query_scalar!(
        r#"WITH charged AS (
               SELECT (p.created_at AT TIME ZONE 'UTC')::date AS day, s.concert_id, count(*) AS payments,
                      sum(p.amount)::bigint AS points
               FROM payments p
               JOIN reservations r ON r.id = p.reservation_id
               JOIN schedules s ON s.id = r.schedule_id
               WHERE p.reservation_id = ANY($1)
               GROUP BY 1, 2),
           settled AS (
               INSERT INTO settlement_days (day, concert_id, payments, points)
               SELECT day, concert_id, payments, points FROM charged
               ON CONFLICT ON CONSTRAINT settlement_days_pkey DO UPDATE
               SET payments = settlement_days.payments + EXCLUDED.payments,
                   points = settlement_days.points + EXCLUDED.points
               RETURNING 1)
           SELECT coalesce(sum(points), 0)::bigint AS "points!" FROM charged"#,
        reservations
    )
    .fetch_one(conn)
    .await
    .context("settle payments")?;
    Ok(points)
}

/// Counts a refused payment of `concert_id` under its error `code`.
pub async fn payment_failed(conn: &mut PgConnection, concert_id: Uuid, code: &str) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO sales_payment_failures (concert_id, code, failures) VALUES ($1, $2, 1)
         ON CONFLICT ON CONSTRAINT sales_payment_failures_pkey DO UPDATE
         SET failures = sales_payment_failures.failures + 1",
        concert_id,
        code
    )
    .execute(conn)
    .await
    .context("count a payment failure")?;
    Ok(())
}

/// One schedule of a concert's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScheduleReport {
    pub schedule_id: Uuid,
    pub starts_at: DateTime<Utc>,
    /// Seats of the schedule, and how they stand now.
    pub seats_total: i64,
    pub seats_available: i64,
    pub seats_held_now: i64,
    /// From the events: seats sold, and the points they brought.
    pub seats_sold: i64,
    pub revenue_points: i64,
    pub holds_placed: i64,
    pub holds_confirmed: i64,
    /// Holds that ended unpaid, and their seats.
    pub holds_expired: i64,
    pub seats_expired: i64,
}

/// Every schedule of `concert_id`, oldest first.
pub async fn schedules(conn: &mut PgConnection, concert_id: Uuid) -> anyhow::Result<Vec<ScheduleReport>> {
    sqlx::query_as!(
        ScheduleReport,
        r#"SELECT s.id AS "schedule_id!", s.starts_at AS "starts_at!",
                  (SELECT count(*) FROM seats WHERE schedule_id = s.id) AS "seats_total!",
                  (SELECT count(*) FROM seats WHERE schedule_id = s.id AND status = 'available') AS "seats_available!",
                  (SELECT count(*) FROM seats WHERE schedule_id = s.id AND status = 'held') AS "seats_held_now!",
                  coalesce(t.seats_sold, 0) AS "seats_sold!", coalesce(t.revenue_points, 0) AS "revenue_points!",
                  coalesce(t.holds_placed, 0) AS "holds_placed!", coalesce(t.holds_confirmed, 0) AS "holds_confirmed!",
                  coalesce(t.holds_expired, 0) AS "holds_expired!", coalesce(t.seats_expired, 0) AS "seats_expired!"
           FROM schedules s LEFT JOIN sales_schedule_totals t ON t.schedule_id = s.id
           WHERE s.concert_id = $1 ORDER BY s.starts_at, s.id"#,
        concert_id
    )
    .fetch_all(conn)
    .await
    .context("schedule reports")
}

/// Distinct fans of a concert at each step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Funnel {
    pub joined: i64,
    pub admitted: i64,
    pub held: i64,
    pub paid: i64,
    /// Admitted, never held a seat.
    pub admitted_never_held: i64,
    /// Held, never paid.
    pub held_never_paid: i64,
}

pub async fn funnel_of(conn: &mut PgConnection, concert_id: Uuid) -> anyhow::Result<Funnel> {
    let row = sqlx::query!(
        r#"SELECT count(joined_at) AS "joined!", count(admitted_at) AS "admitted!", count(held_at) AS "held!",
                  count(paid_at) AS "paid!",
                  count(*) FILTER (WHERE admitted_at IS NOT NULL AND held_at IS NULL) AS "admitted_never_held!",
                  count(*) FILTER (WHERE held_at IS NOT NULL AND paid_at IS NULL) AS "held_never_paid!"
           FROM sales_funnel WHERE concert_id = $1"#,
        concert_id
    )
    .fetch_one(conn)
    .await
    .context("funnel")?;
    Ok(Funnel {
        joined: row.joined,
        admitted: row.admitted,
        held: row.held,
        paid: row.paid,
        admitted_never_held: row.admitted_never_held,
        held_never_paid: row.held_never_paid,
    })
}

/// Refused payments of a concert, by code.
pub async fn failures_of(conn: &mut PgConnection, concert_id: Uuid) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        "SELECT code, failures FROM sales_payment_failures WHERE concert_id = $1 ORDER BY code",
        concert_id
    )
    .fetch_all(conn)
    .await
    .context("payment failures")?;
    Ok(rows.into_iter().map(|r| (r.code, r.failures)).collect())
}

/// One day of one concert's settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SettlementDay {
    /// UTC day of the ledger rows.
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub concert_id: Uuid,
    pub payments: i64,
    pub points: i64,
}

/// The settlement of the days `from` to `to` (both included), by day then concert.
pub async fn settlement(conn: &mut PgConnection, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<SettlementDay>> {
    sqlx::query_as!(
        SettlementDay,
        "SELECT day, concert_id, payments, points FROM settlement_days
         WHERE day BETWEEN $1 AND $2 ORDER BY day, concert_id",
        from,
        to
    )
    .fetch_all(conn)
    .await
    .context("settlement")
}

pub async fn concert_exists(conn: &mut PgConnection, concert_id: Uuid) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM concerts WHERE id = $1) AS "exists!""#,
        concert_id
    )
    .fetch_one(conn)
    .await
    .context("concert exists")
}

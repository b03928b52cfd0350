//! Concerts, schedules, seats, schedule inventory and jobs.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::catalog::SeatColumns;

#[derive(Debug, Clone)]
pub struct ConcertRow {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// `None`: on sale now.
    pub sale_opens_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ScheduleSummary {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub total_seats: i32,
    pub available_seats: i32,
}

#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub concert_id: Uuid,
    pub starts_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SeatRow {
    pub id: Uuid,
    pub section: String,
    pub row_number: i32,
    pub seat_number: i32,
    pub price: i64,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub mode: String,
    pub schedule_id: Option<Uuid>,
    pub status: String,
    pub request: Value,
    pub total: i32,
    pub done: i32,
    pub error: Option<String>,
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.insert_concert"))]
pub async fn insert_concert(
    conn: &mut PgConnection,
    id: Uuid,
    title: &str,
    description: &str,
    sale_opens_at: Option<DateTime<Utc>>,
) -> anyhow::Result<ConcertRow> {
    sqlx::query_as!(
        ConcertRow,
        "INSERT INTO concerts (id, title, description, sale_opens_at) VALUES ($1, $2, $3, $4)
         RETURNING id, title, description, created_at, sale_opens_at",
        id,
        title,
        description,
        sale_opens_at
    )
    .fetch_one(conn)
    .await
    .context("insert concert")
}

/// A page of concerts in a stable order (creation time, then id).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.list_concerts"))]
pub async fn list_concerts(conn: &mut PgConnection, limit: i64, offset: i64) -> anyhow::Result<(Vec<ConcertRow>, i64)> {
    let rows = sqlx::query_as!(
        ConcertRow,
        "SELECT id, title, description, created_at, sale_opens_at FROM concerts
         ORDER BY created_at, id LIMIT $1 OFFSET $2",
        limit,
        offset
    )
    .fetch_all(&mut *conn)
    .await
    .context("list concerts")?;
    let total = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM concerts"#)
        .fetch_one(conn)
        .await
        .context("count concerts")?;
    Ok((rows, total))
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.find_concert"))]
pub async fn find_concert(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<ConcertRow>> {
    sqlx::query_as!(
        ConcertRow,
        "SELECT id, title, description, created_at, sale_opens_at FROM concerts WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("find concert")
}

/// When a concert's sale opens: `None` when there is no such concert, `Some(None)` when it is
/// on sale now, `Some(Some(t))` when it opens at `t` (which may have passed). A primary-key
/// lookup: the waiting room calls it on every join.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.concert_sale_window"))]
pub async fn concert_sale_window(
    conn: &mut PgConnection,
    concert_id: Uuid,
) -> anyhow::Result<Option<Option<DateTime<Utc>>>> {
    sqlx::query_scalar!("SELECT sale_opens_at FROM concerts WHERE id = $1", concert_id)
        .fetch_optional(conn)
        .await
        .context("concert sale window")
}

/// What is left to sell of a concert, summed over its schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcertStock {
    pub total_seats: i64,
    pub available_seats: i64,
    /// Some schedule has a `held` reservation whose `expires_at` is still ahead (database
    /// clock): it may yet be released and give its seats back.
    pub live_holds: bool,
}

/// One statement, index lookups only: the concert's schedules through
/// `schedules_concert_idx`, each one's counts through the `schedule_inventory` primary key,
/// and each one's live holds through the partial `reservations_schedule_held_idx`. The hold
/// check is correlated per schedule on purpose: written as one join, the planner may instead
/// walk every live hold of every concert through `reservations_status_expires_idx`, which
/// grows with the busiest on-sale rather than with this concert. A concert that does not exist
/// has no seats.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.concert_stock"))]
pub async fn concert_stock(conn: &mut PgConnection, concert_id: Uuid) -> anyhow::Result<ConcertStock> {
    sqlx::query_as!(
        ConcertStock,
        r#"SELECT COALESCE(sum(i.total_seats), 0)::bigint AS "total_seats!",
                  COALESCE(sum(COALESCE(i.available_seats, 0) + COALESCE((SELECT sum(d.available_delta) FROM schedule_inventory_slots d WHERE d.schedule_id = s.id), 0)), 0)::bigint AS "available_seats!",
                  COALESCE(bool_or(EXISTS (
                      SELECT 1 FROM reservations r
                      WHERE r.schedule_id = s.id AND r.status = 'held' AND r.expires_at > now())), false) AS "live_holds!"
           FROM schedules s LEFT JOIN schedule_inventory i ON i.schedule_id = s.id
           WHERE s.concert_id = $1"#,
        concert_id
    )
    .fetch_one(conn)
    .await
    .context("concert stock")
}

/// A concert's schedules with their seat counts (`schedule_inventory` plus its slots, not a
/// count of seats).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.schedules_of"))]
pub async fn schedules_of(conn: &mut PgConnection, concert_id: Uuid) -> anyhow::Result<Vec<ScheduleSummary>> {
    sqlx::query_as!(
        ScheduleSummary,
        r#"SELECT s.id, s.starts_at,
                  COALESCE(i.total_seats, 0) AS "total_seats!",
                  (COALESCE(i.available_seats, 0) + COALESCE((SELECT sum(d.available_delta) FROM schedule_inventory_slots d WHERE d.schedule_id = s.id), 0))::int AS "available_seats!"
           FROM schedules s LEFT JOIN schedule_inventory i ON i.schedule_id = s.id
           WHERE s.concert_id = $1 ORDER BY s.starts_at, s.id"#,
        concert_id
    )
    .fetch_all(conn)
    .await
    .context("schedules of concert")
}

/// Inserts a schedule and its (empty) inventory row. Fails with `schedules_concert_fkey`
/// when the concert does not exist.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.insert_schedule"))]
pub async fn insert_schedule(
    conn: &mut PgConnection,
    id: Uuid,
    concert_id: Uuid,
    starts_at: DateTime<Utc>,
) -> anyhow::Result<ScheduleRow> {
    let row = sqlx::query_as!(
        ScheduleRow,
        "INSERT INTO schedules (id, concert_id, starts_at) VALUES ($1, $2, $3) RETURNING id, concert_id, starts_at",
        id,
        concert_id,
        starts_at
    )
    .fetch_one(&mut *conn)
    .await
    .context("insert schedule")?;
    sqlx::query!("INSERT INTO schedule_inventory (schedule_id) VALUES ($1)", id)
        .execute(conn)
        .await
        .context("insert schedule inventory")?;
    Ok(row)
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.find_schedule"))]
pub async fn find_schedule(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        "SELECT id, concert_id, starts_at FROM schedules WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("find schedule")
}

/// Schedules starting in `[from, to)`, for cache warm-up.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.schedules_starting"))]
pub async fn schedules_starting(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        "SELECT id, concert_id, starts_at FROM schedules WHERE starts_at >= $1 AND starts_at < $2 ORDER BY starts_at LIMIT 1000",
        from,
        to
    )
    .fetch_all(conn)
    .await
    .context("schedules starting soon")
}

/// Available seats of a schedule: a primary-key lookup plus at most 64 slot rows.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.available_seats"))]
pub async fn available_seats(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<Option<i32>> {
    sqlx::query_scalar!(
        r#"SELECT (i.available_seats + COALESCE((SELECT sum(d.available_delta) FROM schedule_inventory_slots d
                                                 WHERE d.schedule_id = i.schedule_id), 0))::int AS "available!"
           FROM schedule_inventory i WHERE i.schedule_id = $1"#,
        schedule_id
    )
    .fetch_optional(conn)
    .await
    .context("available seats")
}

/// The seats of a schedule in seat-map order (section, row, number), with their status.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.seats_of"))]
pub async fn seats_of(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<Vec<SeatRow>> {
    sqlx::query_as!(
        SeatRow,
        "SELECT id, section, row_number, seat_number, price, status FROM seats
         WHERE schedule_id = $1
         ORDER BY section, row_number, seat_number",
        schedule_id
    )
    .fetch_all(conn)
    .await
    .context("seats of schedule")
}

/// The states of a schedule's seats in seat-map order, one character a seat (`a` available,
/// `h` held, `s` sold): what a seat map needs besides its layout, in one row.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.seat_states"))]
pub async fn seat_states(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<String> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(string_agg(left(status, 1), '' ORDER BY section, row_number, seat_number), '') AS "states!"
           FROM seats WHERE schedule_id = $1"#,
        schedule_id
    )
    .fetch_one(conn)
    .await
    .context("seat states of schedule")
}

/// Inserts a chunk of seats in one statement (UNNEST), skipping positions that exist.
/// Returns how many were inserted.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.insert_seats"))]
pub async fn insert_seats(conn: &mut PgConnection, schedule_id: Uuid, seats: &SeatColumns) -> anyhow::Result<u64> {
    let ids: Vec<Uuid> = (0..seats.len()).map(|_| Uuid::now_v7()).collect();
    let result = sqlx::query!(
        "INSERT INTO seats (id, schedule_id, section, row_number, seat_number, price)
         SELECT id, $2, section, row_number, seat_number, price
         FROM UNNEST($1::uuid[], $3::text[], $4::int[], $5::int[], $6::bigint[]) AS t(id, section, row_number, seat_number, price)
         ON CONFLICT ON CONSTRAINT seats_position_key DO NOTHING",
        &ids,
        schedule_id,
        &seats.sections,
        &seats.rows,
        &seats.numbers,
        &seats.prices
    )
    .execute(conn)
    .await
    .context("insert seats")?;
    Ok(result.rows_affected())
}

/// Adds `delta` to the schedule's available seats through the slot of this connection's
/// backend (`pg_backend_pid() % 64`): concurrent transactions of one schedule run on different
/// connections, so they rarely wait for the same row.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.add_available"))]
pub async fn add_available(conn: &mut PgConnection, schedule_id: Uuid, delta: i32) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO schedule_inventory_slots (schedule_id, slot, available_delta)
         VALUES ($1, (pg_backend_pid() % 64)::smallint, $2)
         ON CONFLICT (schedule_id, slot) DO UPDATE SET available_delta = schedule_inventory_slots.available_delta + $2",
        schedule_id,
        delta
    )
    .execute(conn)
    .await
    .context("update available seats")?;
    Ok(())
}

/// Adds newly created seats to the schedule's counts.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.add_to_inventory"))]
pub async fn add_to_inventory(conn: &mut PgConnection, schedule_id: Uuid, seats: i32) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO schedule_inventory (schedule_id, total_seats, available_seats) VALUES ($1, $2, $2)
         ON CONFLICT (schedule_id) DO UPDATE
         SET total_seats = schedule_inventory.total_seats + $2, available_seats = schedule_inventory.available_seats + $2",
        schedule_id,
        seats
    )
    .execute(conn)
    .await
    .context("update schedule inventory")?;
    Ok(())
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.insert_job"))]
pub async fn insert_job(conn: &mut PgConnection, job: &JobRow) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO jobs (id, kind, mode, schedule_id, status, request, total) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        job.id,
        job.kind,
        job.mode,
        job.schedule_id,
        job.status,
        job.request,
        job.total
    )
    .execute(conn)
    .await
    .context("insert job")?;
    Ok(())
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.find_job"))]
pub async fn find_job(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "SELECT id, kind, mode, schedule_id, status, request, total, done, error FROM jobs WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("find job")
}

/// Locks the job row for the rest of the transaction: concurrent executors of one job (a
/// redelivered event while the first worker still runs) take turns chunk by chunk.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.lock_job"))]
pub async fn lock_job(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "SELECT id, kind, mode, schedule_id, status, request, total, done, error FROM jobs WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
    .context("lock job")
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.update_job"))]
pub async fn update_job(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    done: i32,
    error: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE jobs SET status = $2, done = $3, error = $4, updated_at = now() WHERE id = $1",
        id,
        status,
        done,
        error
    )
    .execute(conn)
    .await
    .context("update job")?;
    Ok(())
}

/// Pauses (by `by`, from now unless already paused) or resumes a concert's admission;
/// `false` if there is no such concert.
pub async fn set_admission_paused(conn: &mut PgConnection, id: Uuid, paused: bool, by: Uuid) -> anyhow::Result<bool> {
    let done = sqlx::query!(
        "UPDATE concerts
         SET admission_paused_at = CASE WHEN $2 THEN coalesce(admission_paused_at, now()) END,
             admission_paused_by = CASE WHEN $2 THEN coalesce(admission_paused_by, $3) END
         WHERE id = $1",
        id,
        paused,
        by
    )
    .execute(conn)
    .await
    .context("set admission paused")?;
    Ok(done.rows_affected() == 1)
}

/// Whether an admin paused the concert's admission (false for no such concert).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "catalog.admission_paused"))]
pub async fn admission_paused(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let paused = sqlx::query_scalar!(
        r#"SELECT admission_paused_at IS NOT NULL AS "paused!" FROM concerts WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
    .context("admission paused")?;
    Ok(paused.unwrap_or(false))
}

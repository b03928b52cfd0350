//! Reservations (holds) and their seats. Contention is settled here, in SQL: a conditional
//! update of the seat rows with the row count checked, and `reservation_seats_live_seat_key`
//! (one live reservation per seat) as the last guard.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::reservation::ReservationStatus;

#[derive(Debug, Clone)]
pub struct ReservationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub schedule_id: Uuid,
    pub status: ReservationStatus,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
    pub ticket_code: Option<String>,
    pub seat_ids: Vec<Uuid>,
}

/// The concert a schedule belongs to.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.schedule_concert"))]
pub async fn schedule_concert(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT concert_id FROM schedules WHERE id = $1", schedule_id)
        .fetch_optional(conn)
        .await
        .context("schedule's concert")
}

/// Serializes the holds of one user on one schedule until the transaction ends, so the per-user
/// seat cap holds under that user's concurrent requests. Other users are never blocked.
pub async fn lock_user_schedule(conn: &mut PgConnection, user_id: Uuid, schedule_id: Uuid) -> anyhow::Result<()> {
    super::advisory_xact_lock(conn, &format!("hold:{user_id}:{schedule_id}")).await
}

/// What [`hold_seats`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastHold {
    /// The seats are held; their total price, and the outbox row of the event that says so.
    Held { amount: i64, outbox_id: i64 },
    /// The user's live seats (`live`) plus these would pass the cap; nothing changed.
    Limit { live: i64 },
    /// Not every seat was available; nothing changed (the general path decides why).
    Short,
}

/// A hold in one round trip: the user's lock, the cap, the seats taken, the reservation
/// inserted (the `hold_seats` function, migration `20261123000004`) and, when held,
/// `created` written to the outbox with the seats' total as its `amount`
/// (`hold_seats_told`, migration `20261203000001`). In its own implicit transaction when
/// `conn` has none, else in the caller's.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.hold_seats"))]
pub async fn hold_seats(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    schedule_id: Uuid,
    seats: &[Uuid],
    cap: i32,
    expires_at: DateTime<Utc>,
    created: &crate::events::Envelope,
) -> anyhow::Result<FastHold> {
    let row = sqlx::query!(
        r#"SELECT outcome AS "outcome!", live AS "live!", amount, outbox_id
           FROM hold_seats_told($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
        id,
        user_id,
        schedule_id,
        seats,
        cap,
        expires_at,
        created.event_id,
        crate::events::Stream::Reservations.name(),
        created.event_type,
        i32::try_from(created.version).unwrap_or(i32::MAX),
        created.payload,
        created.trace_id
    )
    .fetch_one(conn)
    .await
    .context("hold seats")?;
    match (row.outcome.as_str(), row.amount, row.outbox_id) {
        ("held", Some(amount), Some(outbox_id)) => Ok(FastHold::Held { amount, outbox_id }),
        ("limit", _, _) => Ok(FastHold::Limit { live: row.live }),
        ("short", _, _) => Ok(FastHold::Short),
        (other, _, _) => anyhow::bail!("hold_seats answered {other:?}"),
    }
}

/// Seats of the user's live reservations of the schedule: held and not yet due, paid or
/// confirmed. Said so that only the user's index can serve it (as in `hold_seats`).
#[tracing::instrument(
    name = "db statement",
    skip_all,
    fields(statement = "reservations.live_seats_of_user")
)]
pub async fn live_seats_of_user(conn: &mut PgConnection, user_id: Uuid, schedule_id: Uuid) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
           WHERE r.user_id = $1 AND r.schedule_id = $2
             AND r.status NOT IN ('expired', 'cancelled') AND (r.status <> 'held' OR r.expires_at > now())"#,
        user_id,
        schedule_id
    )
    .fetch_one(conn)
    .await
    .context("the user's live seats")
}

/// A held reservation that ended because it passed `expires_at`.
#[derive(Debug, Clone)]
pub struct ExpiredHold {
    pub id: Uuid,
    pub user_id: Uuid,
    pub schedule_id: Uuid,
    /// Its seats, now available.
    pub seat_ids: Vec<Uuid>,
}

/// Expires the held reservations past `expires_at` that hold any of `seats`, and frees all of
/// their seats, in the caller's transaction: a seat whose hold is due counts as free even
/// before the expiry worker ran.
#[tracing::instrument(
    name = "db statement",
    skip_all,
    fields(statement = "reservations.expire_due_holds_on")
)]
pub async fn expire_due_holds_on(conn: &mut PgConnection, seats: &[Uuid]) -> anyhow::Result<Vec<ExpiredHold>> {
    let expired = sqlx::query!(
        "UPDATE reservations SET status = 'expired', updated_at = now()
         WHERE status = 'held' AND expires_at <= now()
           AND id IN (SELECT reservation_id FROM reservation_seats WHERE seat_id = ANY($1) AND reservation_status = 'held')
         RETURNING id, user_id, schedule_id",
        seats
    )
    .fetch_all(&mut *conn)
    .await
    .context("expire due holds")?;
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = expired.iter().map(|r| r.id).collect();
    let freed = sqlx::query!(
        "UPDATE seats s SET status = 'available' FROM reservation_seats rs
         WHERE rs.reservation_id = ANY($1) AND s.id = rs.seat_id AND s.status = 'held'
         RETURNING rs.reservation_id, s.id",
        &ids
    )
    .fetch_all(conn)
    .await
    .context("free the seats of expired holds")?;
    Ok(expired
        .into_iter()
        .map(|r| ExpiredHold {
            id: r.id,
            user_id: r.user_id,
            schedule_id: r.schedule_id,
            seat_ids: freed
                .iter()
                .filter(|f| f.reservation_id == r.id)
                .map(|f| f.id)
                .collect(),
        })
        .collect())
}

/// Marks `seats` of the schedule held if every one of them is available; returns (id, price)
/// of those it took. The caller checks the count and rolls back unless all were taken.
///
/// The seats are joined from `unnest` so every plan, generic ones included, looks them up by
/// primary key: with `id = ANY($1) AND schedule_id = $2 AND status = 'available'` the generic
/// plan of a prepared statement ANDs in the `(schedule_id, status)` index and reads every
/// available seat of the schedule on each hold (7 ms instead of 0.1 ms on 50,000 seats).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.take_seats"))]
pub async fn take_seats(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    seats: &[Uuid],
) -> anyhow::Result<Vec<(Uuid, i64)>> {
    let rows = sqlx::query!(
        "UPDATE seats s SET status = 'held' FROM unnest($1::uuid[]) AS wanted(id)
         WHERE s.id = wanted.id AND s.schedule_id = $2 AND s.status = 'available'
         RETURNING s.id, s.price",
        seats,
        schedule_id
    )
    .fetch_all(conn)
    .await
    .context("take seats")?;
    Ok(rows.into_iter().map(|r| (r.id, r.price)).collect())
}

/// Which of `seats` belong to the schedule (to tell an unknown seat from a taken one).
#[tracing::instrument(
    name = "db statement",
    skip_all,
    fields(statement = "reservations.seats_of_schedule")
)]
pub async fn seats_of_schedule(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    seats: &[Uuid],
) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT s.id FROM seats s JOIN unnest($1::uuid[]) AS wanted(id) ON s.id = wanted.id
         WHERE s.schedule_id = $2",
        seats,
        schedule_id
    )
    .fetch_all(conn)
    .await
    .context("seats of the schedule")
}

/// Inserts a held reservation and its seats and takes them from the schedule's available
/// count (the connection's slot, as [`crate::infra::postgres::catalog::add_available`]), in one
/// statement (one round trip on the hold path). `reservation_seats_live_seat_key`
/// fails it if a seat is in another live reservation.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.insert_held"))]
pub async fn insert_held(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    schedule_id: Uuid,
    amount: i64,
    expires_at: DateTime<Utc>,
    seats: &[Uuid],
) -> anyhow::Result<()> {
    sqlx::query!(
        "WITH reservation AS (
             INSERT INTO reservations (id, user_id, schedule_id, status, amount, expires_at)
             VALUES ($1, $2, $3, 'held', $4, $5)
             RETURNING id
         ), counted AS (
             INSERT INTO schedule_inventory_slots (schedule_id, slot, available_delta)
             VALUES ($3, (pg_backend_pid() % 64)::smallint, -cardinality($6::uuid[]))
             ON CONFLICT (schedule_id, slot)
             DO UPDATE SET available_delta = schedule_inventory_slots.available_delta + EXCLUDED.available_delta
         )
         INSERT INTO reservation_seats (reservation_id, seat_id, reservation_status)
         SELECT reservation.id, seat_id, 'held' FROM reservation, UNNEST($6::uuid[]) AS t(seat_id)",
        id,
        user_id,
        schedule_id,
        amount,
        expires_at,
        seats
    )
    .execute(conn)
    .await
    .context("insert reservation")?;
    Ok(())
}

/// A reservation with its seats; `lock`: `FOR UPDATE` (the caller changes it).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.find"))]
pub async fn find(conn: &mut PgConnection, id: Uuid, lock: bool) -> anyhow::Result<Option<ReservationRow>> {
    let row = if lock {
        sqlx::query!(
            "SELECT id, user_id, schedule_id, status, amount, expires_at, ticket_code FROM reservations WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.map(|r| (r.id, r.user_id, r.schedule_id, r.status, r.amount, r.expires_at, r.ticket_code)))
    } else {
        sqlx::query!(
            "SELECT id, user_id, schedule_id, status, amount, expires_at, ticket_code FROM reservations WHERE id = $1",
            id
        )
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.map(|r| (r.id, r.user_id, r.schedule_id, r.status, r.amount, r.expires_at, r.ticket_code)))
    }
    .context("find reservation")?;
    let Some((id, user_id, schedule_id, status, amount, expires_at, ticket_code)) = row else {
        return Ok(None);
    };
    let seat_ids = sqlx::query_scalar!(
        "SELECT seat_id FROM reservation_seats WHERE reservation_id = $1 ORDER BY seat_id",
        id
    )
    .fetch_all(conn)
    .await
    .context("seats of reservation")?;
    Ok(Some(ReservationRow {
        id,
        user_id,
        schedule_id,
        status: ReservationStatus::parse(&status)?,
        amount,
        expires_at,
        ticket_code,
        seat_ids,
    }))
}

/// Ends a held reservation (`to`: cancelled or expired) and frees its seats; returns the seats
/// freed (0 if it was no longer held).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.release_held"))]
pub async fn release_held(conn: &mut PgConnection, id: Uuid, to: ReservationStatus) -> anyhow::Result<i64> {
    anyhow::ensure!(
        ReservationStatus::Held.can_become(to) && to != ReservationStatus::Paid,
        "a hold is not released as {to}"
    );
    // One function (migration 20261207000002): the status cascade to the seat rows runs with a
    // generic plan, whatever the table's statistics say.
    let freed = sqlx::query_scalar!(r#"SELECT release_held($1, $2) AS "freed!""#, id, to.as_str())
        .fetch_one(conn)
        .await
        .context("end held reservation and free its seats")?;
    Ok(freed)
}

/// A reservation to confirm, as [`find_paid_batch`] reads it: the row (locked), its seats and
/// its schedule's concert.
#[derive(Debug, Clone)]
pub struct ToConfirm {
    pub reservation: ReservationRow,
    pub concert_id: Option<Uuid>,
}

/// The reservations `ids` (sorted by the caller) with their seats and concerts, locked in id
/// order (`FOR UPDATE` above the sort: two batches never wait on each other in a circle), in one
/// round trip; the missing ones are absent.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.find_paid_batch"))]
pub async fn find_paid_batch(conn: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<Vec<ToConfirm>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.user_id, r.schedule_id, r.status, r.amount, r.expires_at, r.ticket_code,
                  (SELECT s.concert_id FROM schedules s WHERE s.id = r.schedule_id) AS concert_id,
                  ARRAY(SELECT rs.seat_id FROM reservation_seats rs
                        WHERE rs.reservation_id = r.id ORDER BY rs.seat_id) AS "seat_ids!"
           FROM reservations r WHERE r.id = ANY($1::uuid[]) ORDER BY r.id FOR UPDATE OF r"#,
        ids
    )
    .fetch_all(conn)
    .await
    .context("find reservations to confirm")?;
    rows.into_iter()
        .map(|r| {
            Ok(ToConfirm {
                reservation: ReservationRow {
                    id: r.id,
                    user_id: r.user_id,
                    schedule_id: r.schedule_id,
                    status: ReservationStatus::parse(&r.status)?,
                    amount: r.amount,
                    expires_at: r.expires_at,
                    ticket_code: r.ticket_code,
                    seat_ids: r.seat_ids,
                },
                concert_id: r.concert_id,
            })
        })
        .collect()
}

/// `paid` → `confirmed` with its ticket code, and its seats `sold`, for each `(id, ticket
/// code)` in the given order, in one round trip (the `confirm_paid` function of migration
/// 20261207000002, row by row); the ids that were paid and are confirmed now (a redelivery's
/// is not).
#[tracing::instrument(
    name = "db statement",
    skip_all,
    fields(statement = "reservations.confirm_paid_batch")
)]
pub async fn confirm_paid_batch(
    conn: &mut PgConnection,
    ids: &[Uuid],
    ticket_codes: &[String],
) -> anyhow::Result<std::collections::HashSet<Uuid>> {
    // WITH ORDINALITY and ORDER BY: the function runs row by row in the caller's order.
    let confirmed = sqlx::query_scalar!(
        r#"SELECT t.id AS "id!" FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS t(id, code, n)
           WHERE confirm_paid(t.id, t.code) ORDER BY t.n"#,
        ids,
        ticket_codes
    )
    .fetch_all(conn)
    .await
    .context("confirm reservations and sell their seats")?;
    Ok(confirmed.into_iter().collect())
}

/// `held` → `paid`, with the payment row, in the caller's transaction; false if it was not
/// held any more.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.mark_paid"))]
pub async fn mark_paid(
    conn: &mut PgConnection,
    id: Uuid,
    payment_id: Uuid,
    user_id: Uuid,
    amount: i64,
    idempotency_key: &str,
) -> anyhow::Result<bool> {
    let changed = sqlx::query!(
        "UPDATE reservations SET status = 'paid', updated_at = now() WHERE id = $1 AND status = 'held'",
        id
    )
    .execute(&mut *conn)
    .await
    .context("mark reservation paid")?;
    if changed.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "INSERT INTO payments (id, reservation_id, user_id, amount, idempotency_key) VALUES ($1, $2, $3, $4, $5)",
        payment_id,
        id,
        user_id,
        amount,
        idempotency_key
    )
    .execute(conn)
    .await
    .context("insert payment")?;
    Ok(true)
}

/// The user's reservations, newest first, one page, with the total count.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.of_user"))]
pub async fn of_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> anyhow::Result<(Vec<ReservationRow>, i64)> {
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM reservations WHERE user_id = $1"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await
    .context("count the user's reservations")?;
    let rows = sqlx::query!(
        r#"SELECT r.id, r.user_id, r.schedule_id, r.status, r.amount, r.expires_at, r.ticket_code,
                  COALESCE(array_agg(rs.seat_id ORDER BY rs.seat_id) FILTER (WHERE rs.seat_id IS NOT NULL), '{}') AS "seat_ids!"
           FROM reservations r LEFT JOIN reservation_seats rs ON rs.reservation_id = r.id
           WHERE r.user_id = $1
           GROUP BY r.id ORDER BY r.created_at DESC, r.id DESC LIMIT $2 OFFSET $3"#,
        user_id,
        limit,
        offset
    )
    .fetch_all(conn)
    .await
    .context("the user's reservations")?;
    let rows = rows
        .into_iter()
        .map(|r| {
            Ok(ReservationRow {
                id: r.id,
                user_id: r.user_id,
                schedule_id: r.schedule_id,
                status: ReservationStatus::parse(&r.status)?,
                amount: r.amount,
                expires_at: r.expires_at,
                ticket_code: r.ticket_code,
                seat_ids: r.seat_ids,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// Held reservations due for at least `grace` (the sweep's safety net), oldest first.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.due_held"))]
pub async fn due_held(conn: &mut PgConnection, grace_seconds: f64, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM reservations WHERE status = 'held' AND expires_at <= now() - make_interval(secs => $1)
         ORDER BY expires_at LIMIT $2",
        grace_seconds,
        limit
    )
    .fetch_all(conn)
    .await
    .context("due held reservations")
}

/// What [`pay_once`] needs: the key (its lock's name, scope, text and the request's hash),
/// the payment, and the payment's, its ledger row's and its event's ids, made by the caller.
pub struct PayOnce<'a> {
    pub lock: &'a str,
    pub scope: &'a str,
    pub request_hash: &'a str,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    /// The concert of the caller's queue pass: the reservation's schedule must be of it.
    pub concert_id: Uuid,
    pub payment_id: Uuid,
    pub ledger_id: Uuid,
    pub idempotency_key: &'a str,
    pub now: chrono::DateTime<chrono::Utc>,
    /// The outbox row of `payment.completed`.
    pub event_id: Uuid,
    pub trace_id: Option<&'a str>,
}

/// What [`pay_once`] did.
pub enum PaidOnce {
    /// The key was used before: its stored answer and the hash of the request that stored it.
    Stored {
        request_hash: String,
        status: i16,
        body: serde_json::Value,
    },
    /// Paid now, the answer stored under the key, committed.
    Paid { body: serde_json::Value, outbox_id: i64 },
    /// A check failed and nothing was written: the general path says why.
    Unsettled,
}

/// A keyed payment of a held reservation as one statement in its own implicit transaction
/// (`pay_once` in PostgreSQL, migration 20261207000001): the key's lock, its stored answer,
/// the reservation locked and checked (the caller's, of the pass's concert, `held` and not due
/// at `now`), the wallet debited only if it covers the amount (never below zero), the ledger
/// row, the payment, `paid`, the `payment.completed` outbox row and the stored answer — or
/// nothing at all. Behind a transaction pooler `conn` is a transaction the caller commits.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "reservations.pay_once"))]
pub async fn pay_once(conn: &mut PgConnection, p: &PayOnce<'_>) -> anyhow::Result<PaidOnce> {
    let row = sqlx::query!(
        r#"SELECT outcome AS "outcome!", status, body, request_hash, outbox_id
           FROM pay_once($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
        p.lock,
        p.user_id,
        p.scope,
        p.idempotency_key,
        p.request_hash,
        p.reservation_id,
        p.concert_id,
        p.payment_id,
        p.ledger_id,
        p.now,
        p.event_id,
        p.trace_id
    )
    .fetch_one(conn)
    .await
    .context("pay a held reservation once")?;
    match (
        row.outcome.as_str(),
        row.status,
        row.body,
        row.request_hash,
        row.outbox_id,
    ) {
        ("stored", Some(status), Some(body), Some(request_hash), _) => Ok(PaidOnce::Stored {
            request_hash,
            status,
            body,
        }),
        ("paid", _, Some(body), _, Some(outbox_id)) => Ok(PaidOnce::Paid { body, outbox_id }),
        ("unsettled", ..) => Ok(PaidOnce::Unsettled),
        (other, ..) => anyhow::bail!("pay_once answered {other:?}"),
    }
}

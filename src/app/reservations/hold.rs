//! Holding seats (`POST /reservations`).
//!
//! A hold is all or nothing: the seats' Redis gates are taken in one script (a loser is turned
//! away there, before any PostgreSQL statement), then one transaction takes the seat rows with
//! a conditional update whose row count is checked, with the schema's one-live-reservation-per-
//! seat index as the last guard. PostgreSQL is the arbiter; the gates are only a hint. The
//! common case is one statement (`hold_seats`, one round trip); the general path handles a seat
//! that was not available. Why, and why the counts do not serialize a hot schedule:
//! docs/decisions.md ("Booking").

use std::collections::HashSet;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::Reservation;
use crate::app::catalog::seat_map::{SeatChange, seats_changed};
use crate::app::idempotency::{Answer, Begun, Keyed, Once, Scope};
use crate::app::waiting_room::ActivePass;
use crate::app::{AppError, Deps};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::reservation::ReservationStatus;
use crate::events::{ReservationCreated, ReservationExpired};
use crate::infra::postgres::error::violated_constraint;
use crate::infra::postgres::{catalog, outbox, reservations as repo};
use crate::infra::redis::seat_gates;

fn count(outcome: &'static str) {
    metrics::counter!("holds_total", "outcome" => outcome).increment(1);
}

fn seat_unavailable(taken: &[Uuid]) -> AppError {
    let list = taken.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ");
    AppError::conflict("seat_unavailable", format!("these seats are not available: {list}"))
        .with_extension("taken_seat_ids", serde_json::json!(taken))
}

/// Checks the requested seats: 1 to `IMTICKET_MAX_SEATS_PER_RESERVATION`, no duplicates.
fn check_seats(deps: &Deps, seats: &[Uuid]) -> Result<(), AppError> {
    let max = usize::from(deps.config.booking.max_seats_per_reservation);
    if seats.is_empty() {
        return Err(AppError::validation(
            "invalid_field",
            "seat_ids: must name at least one seat",
        ));
    }
    if seats.len() > max {
        return Err(AppError::validation(
            "too_many_seats",
            format!("seat_ids: at most {max} seats per reservation"),
        ));
    }
    let distinct: HashSet<&Uuid> = seats.iter().collect();
    if distinct.len() != seats.len() {
        return Err(AppError::validation("invalid_field", "seat_ids: a seat is named twice"));
    }
    Ok(())
}

/// `POST /reservations` with an `Idempotency-Key`: a retried hold returns the same
/// reservation (the stored answer), never a second one. The key costs the request a PostgreSQL
/// lookup before the Redis gate; without a key a loser costs none.
pub async fn hold_once(
    deps: &Deps,
    pass: ActivePass,
    schedule_id: Uuid,
    seats: &[Uuid],
    key: &IdempotencyKey,
) -> Result<Answer, AppError> {
    // Before the transaction: a cache miss must not need a second connection inside it.
    deps.schedule_concerts.concert_of(&deps.db, schedule_id).await?;
    // The same seats in another order are the same request.
    let mut seat_ids = seats.to_vec();
    seat_ids.sort_unstable();
    let request = serde_json::json!({ "schedule_id": schedule_id, "seat_ids": seat_ids });
    let keyed = Keyed {
        user_id: pass.pass.user_id,
        key,
        scope: Scope::Hold,
        request: &request,
    };
    let once = match Once::begin(deps, keyed).await? {
        Begun::AnsweredBefore(answer) => return Ok(answer),
        Begun::FirstTime(once) => once,
    };
    let reservation = hold_with(deps, pass, schedule_id, seats, Some(once)).await?;
    Ok(Answer {
        status: 201,
        body: serde_json::to_value(&reservation).context("serialize reservation")?,
        replayed: false,
    })
}

/// `POST /reservations`: holds `seats` of `schedule_id` for the caller, all or nothing.
pub async fn hold(deps: &Deps, pass: ActivePass, schedule_id: Uuid, seats: &[Uuid]) -> Result<Reservation, AppError> {
    hold_with(deps, pass, schedule_id, seats, None).await
}

#[tracing::instrument(name = "hold seats", skip_all, fields(schedule_id = %schedule_id))]
async fn hold_with(
    deps: &Deps,
    pass: ActivePass,
    schedule_id: Uuid,
    seats: &[Uuid],
    once: Option<Once>,
) -> Result<Reservation, AppError> {
    check_seats(deps, seats)?;
    let concert_id = deps.schedule_concerts.concert_of(&deps.db, schedule_id).await?;
    let pass = pass.for_concert(concert_id)?;
    let user_id = pass.pass.user_id;
    let id = Uuid::now_v7();
    let wanted = Wanted {
        id,
        user_id,
        concert_id,
        schedule_id,
        seats,
    };
    let ttl = deps.config.booking.hold_ttl;
    let taken = seat_gates::take(&deps.redis, &deps.keys, schedule_id, seats, id, ttl)
        .await
        .map_err(|e| {
            AppError::unavailable(
                "dependency_unavailable",
                "seat holds are unavailable; try again shortly",
                5,
            )
            .with_source(e)
        })?;
    // A gate held by a hold that never committed (its API process died in between) would
    // refuse the seat for the whole hold TTL: such a gate is left to PostgreSQL to decide.
    let past_stale_gates = !taken.is_empty() && stale_gates(deps, schedule_id, &taken).await;
    if !taken.is_empty() && !past_stale_gates {
        count("lost_in_redis");
        return Err(seat_unavailable(&taken));
    }
    let held = match once {
        // The key's transaction: the hold and the stored answer commit together.
        Some(mut once) => match hold_in_tx(deps, once.tx(), &wanted).await {
            Ok(held) => match serde_json::to_value(&held.reservation) {
                Ok(body) => once.commit_with(201, body).await.map(|_| held),
                Err(e) => Err(AppError::internal(
                    anyhow::Error::new(e).context("serialize reservation"),
                )),
            },
            Err(err) => Err(err),
        },
        // Without a key the common hold is one statement in its own transaction (behind a
        // transaction pooler, the connection's transaction, committed here).
        None => {
            async {
                let mut conn = deps.db.write().await.context("acquire connection")?;
                if let Some(held) = fast_hold(deps, &mut conn, &wanted).await? {
                    conn.commit().await.context("commit hold")?;
                    return Ok(held);
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await.context("begin hold")?;
                let held = general_hold(deps, &mut tx, &wanted).await?;
                tx.commit().await.context("commit hold")?;
                conn.commit().await.context("commit hold")?;
                Ok(held)
            }
            .await
        }
    };
    if held.is_err()
        && let Err(err) = seat_gates::release(&deps.redis, &deps.keys, schedule_id, seats, id).await
    {
        // They expire with the hold TTL; PostgreSQL decides in any case.
        tracing::warn!(error = %format!("{err:#}"), "could not release the seat gates of a failed hold");
    }
    let Held {
        reservation,
        expired,
        outbox_ids,
    } = held?;
    count("won");
    if past_stale_gates && let Err(err) = seat_gates::set(&deps.redis, &deps.keys, schedule_id, seats, id, ttl).await {
        tracing::warn!(error = %format!("{err:#}"), "could not take over stale seat gates");
    }
    // The rest at once (one round trip's wait, not three): the expiry scheduled, the events
    // handed to the publisher, the seat map and the concert's details.
    let expiry = async {
        if let Err(err) =
            crate::infra::redis::expiry_due::schedule(&deps.redis, &deps.keys, reservation.id, reservation.expires_at)
                .await
        {
            // The expiry scheduler's PostgreSQL sweep finds it.
            tracing::warn!(error = %format!("{err:#}"), "could not schedule the hold's expiry in Redis");
        }
    };
    let publish = async {
        if !outbox_ids.is_empty() {
            deps.outbox.publish_soon(&outbox_ids).await;
        }
    };
    // The due holds' seats first: some of them are ours now, written after.
    let mut changes: Vec<SeatChange> = expired.iter().map(|old| SeatChange::available(&old.seat_ids)).collect();
    changes.push(SeatChange::held(&reservation.seat_ids));
    tokio::join!(expiry, publish, seats_changed(deps, schedule_id, concert_id, &changes));
    Ok(reservation)
}

/// What a hold's transaction did: the reservation, and the due holds it expired on the way
/// (with their `reservation.expired` outbox rows, published after commit).
struct Held {
    reservation: Reservation,
    expired: Vec<repo::ExpiredHold>,
    outbox_ids: Vec<i64>,
}

/// What a hold asks PostgreSQL for: reservation `id` of `user_id`, holding `seats` of
/// `schedule_id`.
#[derive(Clone, Copy)]
struct Wanted<'a> {
    id: Uuid,
    user_id: Uuid,
    concert_id: Uuid,
    schedule_id: Uuid,
    seats: &'a [Uuid],
}

/// The PostgreSQL part of a hold, in the caller's transaction (committed by the caller): the
/// one-statement hold, and the general path if a seat was not available.
async fn hold_in_tx(deps: &Deps, tx: &mut sqlx::PgConnection, wanted: &Wanted<'_>) -> Result<Held, AppError> {
    match fast_hold(deps, tx, wanted).await? {
        Some(held) => Ok(held),
        None => general_hold(deps, tx, wanted).await,
    }
}

/// Microseconds, as PostgreSQL keeps it: the answer shows what a later read will show.
fn hold_expires_at(deps: &Deps) -> Result<DateTime<Utc>, AppError> {
    Ok((Utc::now() + chrono::Duration::from_std(deps.config.booking.hold_ttl).context("hold TTL")?).trunc_subsecs(6))
}

fn limit_reached(cap: i64, live: i64) -> AppError {
    count("limit");
    AppError::conflict(
        "seat_limit_reached",
        format!("at most {cap} seats per user for a schedule; you hold {live}"),
    )
}

/// A seat in another live reservation fails the insert with the schema's last guard.
fn lost_at_the_guard(err: anyhow::Error, seats: &[Uuid]) -> AppError {
    if violated_constraint(&err) == Some("reservation_seats_live_seat_key") {
        count("lost_in_postgres");
        return seat_unavailable(seats);
    }
    err.into()
}

/// The common hold in one round trip (`hold_seats` in PostgreSQL: lock, cap, seats, insert).
/// `None` if not every seat was available: nothing changed, and [`general_hold`] decides.
async fn fast_hold(deps: &Deps, conn: &mut sqlx::PgConnection, wanted: &Wanted<'_>) -> Result<Option<Held>, AppError> {
    let Wanted {
        id,
        user_id,
        schedule_id,
        seats,
        ..
    } = *wanted;
    let cap = deps.config.booking.max_seats_per_user;
    let expires_at = hold_expires_at(deps)?;
    // The amount is the function's to fill in: 0 until then.
    let created = crate::events::encode(&created(wanted, 0, expires_at))?;
    let outcome = repo::hold_seats(
        conn,
        id,
        user_id,
        schedule_id,
        seats,
        i32::from(cap),
        expires_at,
        &created,
    )
    .await
    .map_err(|e| lost_at_the_guard(e, seats))?;
    match outcome {
        repo::FastHold::Held { amount, outbox_id } => Ok(Some(Held {
            reservation: held_reservation(id, schedule_id, seats, amount, expires_at),
            expired: Vec::new(),
            outbox_ids: vec![outbox_id],
        })),
        repo::FastHold::Limit { live } => Err(limit_reached(i64::from(cap), live)),
        repo::FastHold::Short => Ok(None),
    }
}

/// The `reservation.created` event of a hold.
fn created(wanted: &Wanted<'_>, amount: i64, expires_at: DateTime<Utc>) -> ReservationCreated {
    let mut seat_ids = wanted.seats.to_vec();
    seat_ids.sort_unstable();
    ReservationCreated {
        reservation_id: wanted.id,
        user_id: wanted.user_id,
        concert_id: wanted.concert_id,
        schedule_id: wanted.schedule_id,
        seat_ids,
        amount,
        expires_at,
    }
}

fn held_reservation(
    id: Uuid,
    schedule_id: Uuid,
    seats: &[Uuid],
    amount: i64,
    expires_at: DateTime<Utc>,
) -> Reservation {
    let mut sorted = seats.to_vec();
    sorted.sort_unstable();
    Reservation {
        id,
        status: ReservationStatus::Held,
        schedule_id,
        seat_ids: sorted,
        amount,
        expires_at,
        ticket_code: None,
    }
}

/// The general hold, statement by statement, when a seat was not available to the one-statement
/// hold: the user's lock, the user's live seats, the seats taken; for the missing ones, due
/// holds expired and the seats tried again; then a taken seat (409) is told from one that is
/// not the schedule's (422); else the reservation inserted (with its seats and the count).
async fn general_hold(deps: &Deps, tx: &mut sqlx::PgConnection, wanted: &Wanted<'_>) -> Result<Held, AppError> {
    let Wanted {
        id,
        user_id,
        schedule_id,
        seats,
        ..
    } = *wanted;
    let tx = &mut *tx;
    repo::lock_user_schedule(tx, user_id, schedule_id).await?;
    let live = repo::live_seats_of_user(tx, user_id, schedule_id).await?;
    let cap = i64::from(deps.config.booking.max_seats_per_user);
    if live + seats.len() as i64 > cap {
        return Err(limit_reached(cap, live));
    }
    let mut got = repo::take_seats(tx, schedule_id, seats).await?;
    let mut expired = Vec::new();
    let mut outbox_ids = Vec::new();
    if got.len() != seats.len() {
        let missing = missing_from(seats, &got);
        expired = repo::expire_due_holds_on(tx, &missing).await?;
        let freed: usize = expired.iter().map(|e| e.seat_ids.len()).sum();
        if freed > 0 {
            catalog::add_available(tx, schedule_id, freed as i32).await?;
            got.extend(repo::take_seats(tx, schedule_id, &missing).await?);
        }
        for old in &expired {
            let fact = ReservationExpired {
                reservation_id: old.id,
                user_id: old.user_id,
                schedule_id: old.schedule_id,
                seat_ids: old.seat_ids.clone(),
            };
            outbox_ids.push(outbox::append(tx, &fact).await?);
        }
    }
    if got.len() != seats.len() {
        let missing = missing_from(seats, &got);
        let ours: HashSet<Uuid> = repo::seats_of_schedule(tx, schedule_id, &missing)
            .await?
            .into_iter()
            .collect();
        let unknown: Vec<Uuid> = missing.iter().filter(|s| !ours.contains(s)).copied().collect();
        if !unknown.is_empty() {
            return Err(AppError::validation(
                "unknown_seats",
                format!(
                    "seat_ids: not seats of this schedule: {}",
                    unknown.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        count("lost_in_postgres");
        return Err(seat_unavailable(&missing));
    }
    let amount: i64 = got.iter().map(|(_, price)| price).sum();
    let expires_at = hold_expires_at(deps)?;
    repo::insert_held(tx, id, user_id, schedule_id, amount, expires_at, seats)
        .await
        .map_err(|e| lost_at_the_guard(e, seats))?;
    outbox_ids.push(outbox::append(tx, &created(wanted, amount, expires_at)).await?);
    Ok(Held {
        reservation: held_reservation(id, schedule_id, seats, amount, expires_at),
        expired,
        outbox_ids,
    })
}

/// The requested seats not among those taken, in the order they were asked for.
fn missing_from(seats: &[Uuid], got: &[(Uuid, i64)]) -> Vec<Uuid> {
    let won: HashSet<Uuid> = got.iter().map(|(id, _)| *id).collect();
    seats.iter().filter(|s| !won.contains(s)).copied().collect()
}

/// How old a gate's owner must be before it can be stale: far longer than any hold request
/// takes from taking its gates to committing (its timeouts are seconds).
const GATE_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether every gate refusing `taken` is stale: its owner (a reservation id, UUID v7, minted
/// when the gate was taken) is older than [`GATE_STALE_AFTER`] and is no committed hold (not in
/// the due set; a sold seat's gate was released at the sale). PostgreSQL then decides, as it
/// always does; a wrong "stale" costs one PostgreSQL refusal, never a double sale.
async fn stale_gates(deps: &Deps, schedule_id: Uuid, taken: &[Uuid]) -> bool {
    let Ok(owners) = seat_gates::owners(&deps.redis, &deps.keys, schedule_id, taken).await else {
        return false;
    };
    let now = chrono::Utc::now().timestamp_millis();
    let old = |owner: &Uuid| {
        owner.get_timestamp().is_some_and(|t| {
            let (secs, nanos) = t.to_unix();
            let minted = (secs as i64) * 1000 + i64::from(nanos / 1_000_000);
            now - minted > GATE_STALE_AFTER.as_millis() as i64
        })
    };
    let owners: Vec<Uuid> = owners.into_iter().flatten().collect();
    if owners.len() != taken.len() || !owners.iter().all(old) {
        return false;
    }
    let stale = matches!(
        crate::infra::redis::expiry_due::any_scheduled(&deps.redis, &deps.keys, &owners).await,
        Ok(false)
    );
    if stale {
        count("past_stale_gate");
    }
    stale
}

//! Reservations, beside `api/reservations.rs` and `infra/postgres/reservations.rs`: a
//! reservation as the API shows it, reading one or a page of them, cancelling a hold, and what
//! follows a released hold. Holding seats is [`hold`]; paying is [`crate::app::payments`].
//! The state machine is [`crate::domain::reservation`].

pub mod hold;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::catalog::seat_map::{SeatChange, seats_changed};
use super::waiting_room::ActivePass;
use super::{AppError, Deps};
use crate::domain::reservation::ReservationStatus;
use crate::infra::postgres::{catalog, reservations as repo};
use crate::infra::redis::seat_gates;

/// A reservation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub id: Uuid,
    /// As it reads now: held past `expires_at` is expired ([`ReservationStatus::at`]).
    pub status: ReservationStatus,
    pub schedule_id: Uuid,
    pub seat_ids: Vec<Uuid>,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
    pub ticket_code: Option<String>,
}

impl From<repo::ReservationRow> for Reservation {
    fn from(r: repo::ReservationRow) -> Self {
        Self {
            id: r.id,
            status: r.status.at(r.expires_at, Utc::now()),
            schedule_id: r.schedule_id,
            seat_ids: r.seat_ids,
            amount: r.amount,
            expires_at: r.expires_at,
            ticket_code: r.ticket_code,
        }
    }
}

/// `GET /reservations/{id}`: the caller's own reservation (another user's is 404: its existence
/// does not leak).
pub async fn get(deps: &Deps, user_id: Uuid, id: Uuid) -> Result<Reservation, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let row = repo::find(&mut conn, id, false).await?.filter(|r| r.user_id == user_id);
    row.map(Reservation::from).ok_or_else(AppError::reservation_not_found)
}

/// A page of the caller's reservations, newest first (their tickets).
pub struct ReservationPage {
    pub items: Vec<Reservation>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

/// `GET /users/me/reservations`.
pub async fn of_user(
    deps: &Deps,
    user_id: Uuid,
    page: crate::domain::catalog::PageRequest,
) -> Result<ReservationPage, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let (rows, total) = repo::of_user(&mut conn, user_id, i64::from(page.size), page.offset()).await?;
    Ok(ReservationPage {
        items: rows.into_iter().map(Reservation::from).collect(),
        page: page.page,
        size: page.size,
        total,
    })
}

/// `DELETE /reservations/{id}`: releases a held reservation of the caller; 409 once paid.
/// Cancelling one that already ended (cancelled, expired) changes nothing.
pub async fn cancel(deps: &Deps, pass: ActivePass, id: Uuid) -> Result<(), AppError> {
    let user_id = pass.pass.user_id;
    let mut tx = deps.db.begin().await.context("begin cancel")?;
    let row = repo::find(&mut tx, id, true)
        .await?
        .filter(|r| r.user_id == user_id)
        .ok_or_else(AppError::reservation_not_found)?;
    let concert_id = deps.schedule_concerts.concert_of_in(&mut tx, row.schedule_id).await?;
    pass.for_concert(concert_id)?;
    if row.status.is_paid() {
        return Err(AppError::conflict(
            "reservation_paid",
            "a paid reservation cannot be cancelled",
        ));
    }
    // Only a live hold is cancelled. A due one is already expired (it reads so); the expiry
    // path releases it and writes its `reservation.expired` fact, so cancelling changes nothing.
    let was_held = row.status.at(row.expires_at, Utc::now()) == ReservationStatus::Held;
    if was_held {
        let freed = repo::release_held(&mut tx, id, ReservationStatus::Cancelled).await?;
        if freed > 0 {
            catalog::add_available(&mut tx, row.schedule_id, freed as i32).await?;
        }
    }
    tx.commit().await.context("commit cancel")?;
    if was_held {
        released(deps, &row, concert_id, ReservationStatus::Cancelled).await;
    }
    Ok(())
}

/// After the commit that ended a held reservation (`why`: cancelled, expired): its seat gates
/// go and its seats show available. Redis errors are logged (gates expire with the hold TTL;
/// the seat states are rebuilt within theirs).
pub(crate) async fn released(deps: &Deps, row: &repo::ReservationRow, concert_id: Uuid, why: ReservationStatus) {
    if let Err(err) = seat_gates::release(&deps.redis, &deps.keys, row.schedule_id, &row.seat_ids, row.id).await {
        tracing::warn!(error = %format!("{err:#}"), why = why.as_str(), "could not release the seat gates of an ended hold");
    }
    seats_changed(
        deps,
        row.schedule_id,
        concert_id,
        &[SeatChange::available(&row.seat_ids)],
    )
    .await;
}

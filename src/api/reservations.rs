//! Reservations over HTTP: hold seats, read a reservation, cancel a hold. Holding and
//! cancelling pass the waiting-room gate ([`super::waiting_room::ActiveQueue`]).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AuthUser, IdempotencyHeader, Json, answer};
use super::rate_limits::limit;
use super::waiting_room::{ActiveQueue, QueueToken};
use crate::app::payments;
use crate::app::reservations::{self, Reservation, hold};
use crate::app::{AppError, Deps};
use crate::domain::rate_limit::Policy;
use crate::domain::reservation::ReservationStatus;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReservation {
    pub schedule_id: Uuid,
    /// 1 to `IMTICKET_MAX_SEATS_PER_RESERVATION` distinct seats of that schedule, all or nothing.
    pub seat_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationBody {
    pub id: Uuid,
    /// A held reservation past `expires_at` reads `expired`.
    pub status: ReservationStatus,
    pub schedule_id: Uuid,
    pub seat_ids: Vec<Uuid>,
    /// Points.
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
    pub ticket_code: Option<String>,
}

impl From<Reservation> for ReservationBody {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id,
            status: r.status,
            schedule_id: r.schedule_id,
            seat_ids: r.seat_ids,
            amount: r.amount,
            expires_at: r.expires_at,
            ticket_code: r.ticket_code,
        }
    }
}

/// Hold seats of one schedule for `IMTICKET_HOLD_TTL_SECONDS`, all or nothing. Needs an active
/// `X-Queue-Token` for the schedule's concert.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "reservations", request_body = NewReservation,
    params(("X-Queue-Token" = String, Header, description = "an active queue entry"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
            description = "optional: a retried hold returns the same reservation")),
    security(("bearer" = [])),
    responses((status = 201, body = ReservationBody),
        (status = 403, body = Problem, description = "`queue_not_active`"),
        (status = 404, body = Problem, description = "`schedule_not_found`"),
        (status = 409, body = Problem, description = "`seat_unavailable` (with `taken_seat_ids`), `seat_limit_reached`, \
            `idempotency_key_reused`"),
        (status = 422, body = Problem, description = "`invalid_field`, `too_many_seats`, `unknown_seats` (seats that are \
            not the schedule's)")))]
pub async fn hold(
    req: HttpRequest,
    deps: Data<Deps>,
    ActiveQueue(pass): ActiveQueue,
    key: IdempotencyHeader,
    Json(body): Json<NewReservation>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::UserWrites, &pass.pass.user_id.to_string()).await?;
    if let Some(key) = key.0 {
        let stored = hold::hold_once(&deps, pass, body.schedule_id, &body.seat_ids, &key).await?;
        return Ok(answer(stored.status, stored.body));
    }
    let reservation = hold::hold(&deps, pass, body.schedule_id, &body.seat_ids).await?;
    Ok(HttpResponse::Created().json(ReservationBody::from(reservation)))
}

/// One of the caller's reservations.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "reservations", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ReservationBody),
        (status = 404, body = Problem, description = "`reservation_not_found` (also another user's)")))]
pub async fn get(deps: Data<Deps>, AuthUser(user): AuthUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    let reservation = reservations::get(&deps, user.user_id, *id).await?;
    Ok(HttpResponse::Ok().json(ReservationBody::from(reservation)))
}

/// Release a held reservation (204); 409 once paid. Needs an active `X-Queue-Token`.
#[utoipa::path(delete, path = "/api/v1/reservations/{id}", tag = "reservations", params(("id" = Uuid, Path),
        ("X-Queue-Token" = String, Header, description = "an active queue entry")),
    security(("bearer" = [])),
    responses((status = 204, description = "cancelled (or already cancelled or expired)"),
        (status = 403, body = Problem, description = "`queue_not_active`"),
        (status = 404, body = Problem, description = "`reservation_not_found`"),
        (status = 409, body = Problem, description = "`reservation_paid`")))]
pub async fn cancel(
    req: HttpRequest,
    deps: Data<Deps>,
    ActiveQueue(pass): ActiveQueue,
    id: Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::UserWrites, &pass.pass.user_id.to_string()).await?;
    reservations::cancel(&deps, pass, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentBody {
    pub payment_id: Uuid,
    pub reservation_id: Uuid,
    pub amount: i64,
    /// `completed`.
    pub status: String,
    /// The wallet's balance after the payment.
    pub balance: i64,
}

/// Pay a held reservation with points, once per `Idempotency-Key` (required). Needs an active
/// `X-Queue-Token`; a replay returns the stored answer even after the slot was released.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/payments", tag = "reservations",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "required"),
        ("X-Queue-Token" = String, Header, description = "an active queue entry")),
    security(("bearer" = [])),
    responses((status = 201, body = PaymentBody), (status = 402, body = Problem, description = "`insufficient_points`"),
        (status = 403, body = Problem, description = "`queue_not_active`"),
        (status = 404, body = Problem, description = "`reservation_not_found`"),
        (status = 409, body = Problem, description = "`hold_expired`, `reservation_paid`, `idempotency_key_reused`")))]
pub async fn pay(
    req: HttpRequest,
    deps: Data<Deps>,
    AuthUser(user): AuthUser,
    QueueToken(pass): QueueToken,
    key: IdempotencyHeader,
    id: Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::UserWrites, &user.user_id.to_string()).await?;
    let key = key.required()?;
    let stored = payments::pay(&deps, user.user_id, pass, *id, &key).await?;
    Ok(answer(stored.status, stored.body))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationPageBody {
    pub items: Vec<ReservationBody>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

/// The caller's reservations (their tickets), newest first.
#[utoipa::path(get, path = "/api/v1/users/me/reservations", tag = "reservations",
    params(super::catalog::dto::PageQuery), security(("bearer" = [])),
    responses((status = 200, body = ReservationPageBody),
        (status = 422, body = Problem, description = "`invalid_field`: `page` or `size` out of range")))]
pub async fn mine(
    deps: Data<Deps>,
    AuthUser(user): AuthUser,
    query: super::extract::Query<super::catalog::dto::PageQuery>,
) -> Result<HttpResponse, AppError> {
    let page = crate::domain::catalog::PageRequest::parse(query.0.page, query.0.size)?;
    let found = reservations::of_user(&deps, user.user_id, page).await?;
    Ok(HttpResponse::Ok().json(ReservationPageBody {
        items: found.items.into_iter().map(ReservationBody::from).collect(),
        page: found.page,
        size: found.size,
        total: found.total,
    }))
}

//! Reservations over HTTP: hold seats, read a reservation, cancel a hold. Holding and
//! cancelling pass the waiting-room gate ([`super::queue::ActiveQueue`]).

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AuthUser, Json};
use super::queue::ActiveQueue;
use crate::app::holds::{self, Reservation};
use crate::app::{AppError, Deps};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReservation {
    pub schedule_id: Uuid,
    /// 1 to `IMTICKET_MAX_SEATS_PER_RESERVATION` seats of that schedule, all or nothing.
    pub seat_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationBody {
    pub id: Uuid,
    /// `held`, `paid`, `confirmed`, `expired` or `cancelled`.
    pub status: String,
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
    params(("X-Queue-Token" = String, Header, description = "an active queue entry")),
    security(("bearer" = [])),
    responses((status = 201, body = ReservationBody), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "`queue_not_active`"),
        (status = 409, body = Problem, description = "`seat_unavailable` (with `taken_seat_ids`) or `seat_limit_reached`"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn hold(
    deps: Data<Deps>,
    ActiveQueue(pass): ActiveQueue,
    Json(body): Json<NewReservation>,
) -> Result<HttpResponse, AppError> {
    let reservation = holds::hold(&deps, pass, body.schedule_id, &body.seat_ids).await?;
    Ok(HttpResponse::Created().json(ReservationBody::from(reservation)))
}

/// One of the caller's reservations.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "reservations", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ReservationBody), (status = 401, body = Problem),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(deps: Data<Deps>, AuthUser(user): AuthUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    let reservation = holds::get(&deps, user.user_id, *id).await?;
    Ok(HttpResponse::Ok().json(ReservationBody::from(reservation)))
}

/// Release a held reservation (204); 409 once paid. Needs an active `X-Queue-Token`.
#[utoipa::path(delete, path = "/api/v1/reservations/{id}", tag = "reservations", params(("id" = Uuid, Path),
        ("X-Queue-Token" = String, Header, description = "an active queue entry")),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    deps: Data<Deps>,
    ActiveQueue(pass): ActiveQueue,
    id: Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    holds::cancel(&deps, pass, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! Concerts, schedules, seats and jobs. Reads are public; writes need an admin token. The
//! request and response bodies are in [`dto`].

pub mod dto;

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::{Data, Path};
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AdminUser, Json, Query};
use crate::app::catalog::seat_creation::{self, JobMode};
use crate::app::catalog::{concerts, seat_map};
use crate::app::{AppError, Deps};
use crate::cache::JsonBody;
use crate::domain::catalog::{PageRequest, RawSection, SeatLayout};
use dto::{
    Concert, ConcertDetails, ConcertPage, Job, JobAccepted, NewConcert, NewSchedule, NewSeats, PageQuery, Schedule,
    SeatCreationQuery, SeatMap, SeatQuery,
};

fn json_body(body: JsonBody) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(body.to_vec())
}

/// Create a concert (admin).
#[utoipa::path(post, path = "/api/v1/concerts", tag = "catalog", request_body = NewConcert, security(("bearer" = [])),
    responses((status = 201, body = Concert), (status = 403, description = "`admin_required`", body = Problem),
        (status = 422, description = "`invalid_field`: a rule of the body (the detail names the field)", body = Problem)))]
pub async fn create_concert(
    deps: Data<Deps>,
    _: AdminUser,
    Json(body): Json<NewConcert>,
) -> Result<HttpResponse, AppError> {
    let concert = concerts::create_concert(&deps, &body.title, &body.description, body.sale_opens_at).await?;
    Ok(HttpResponse::Created().json(Concert::from(concert)))
}

/// Concerts, oldest first (a stable order for paging).
#[utoipa::path(get, path = "/api/v1/concerts", tag = "catalog", params(PageQuery),
    responses((status = 200, body = ConcertPage), (status = 422, description = "`invalid_field`: `page` or `size` out of range", body = Problem)))]
pub async fn list_concerts(deps: Data<Deps>, query: Query<PageQuery>) -> Result<HttpResponse, AppError> {
    let page = PageRequest::parse(query.page, query.size)?;
    Ok(HttpResponse::Ok().json(ConcertPage::from(concerts::list_concerts(&deps, page).await?)))
}

/// A concert with its schedules and their total and available seats (cached 300 s ± 30 s).
#[utoipa::path(get, path = "/api/v1/concerts/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConcertDetails), (status = 404, description = "`concert_not_found`", body = Problem)))]
pub async fn concert(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(json_body(concerts::concert_details(&deps, *id).await?))
}

/// Add a schedule (performance) to a concert (admin).
#[utoipa::path(post, path = "/api/v1/concerts/{id}/schedules", tag = "catalog", params(("id" = Uuid, Path)),
    request_body = NewSchedule, security(("bearer" = [])),
    responses((status = 201, body = Schedule), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`concert_not_found`", body = Problem),
        (status = 422, description = "`invalid_field`: `starts_at` not in the future, or more than 5 years ahead; a plan named without all of `hall_plan_id`, `version`, `prices`, a plan version that does not exist, or prices that do not cover exactly its categories for sale", body = Problem)))]
pub async fn create_schedule(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    Json(body): Json<NewSchedule>,
) -> Result<HttpResponse, AppError> {
    let plan = match (body.hall_plan_id, body.version, body.prices) {
        (None, None, None) => None,
        (Some(hall_id), Some(version), Some(prices)) => Some(concerts::PlanChoice {
            hall_id,
            version,
            prices,
        }),
        _ => {
            return Err(AppError::validation(
                "invalid_field",
                "hall_plan_id, version, prices: give all three or none",
            ));
        }
    };
    let schedule = concerts::create_schedule(&deps, *id, body.starts_at, plan).await?;
    Ok(HttpResponse::Created().json(Schedule::from(schedule)))
}

/// Create seats in bulk (admin): answers at once with a job to follow.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/seats", tag = "catalog", params(("id" = Uuid, Path), SeatCreationQuery),
    request_body = NewSeats, security(("bearer" = [])),
    responses((status = 202, body = JobAccepted, headers(("Location" = String, description = "/api/v1/jobs/{job_id}"))),
        (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`schedule_not_found`", body = Problem),
        (status = 422, description = "`invalid_field`: a rule of the body or `mode`", body = Problem)))]
pub async fn create_seats(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    query: Query<SeatCreationQuery>,
    Json(body): Json<NewSeats>,
) -> Result<HttpResponse, AppError> {
    let mode = match query.mode.as_deref() {
        None | Some("stream") => JobMode::Stream,
        Some("inline") => JobMode::Inline,
        Some(other) => {
            return Err(AppError::validation(
                "invalid_field",
                format!("mode: must be stream or inline, got {other:?}"),
            ));
        }
    };
    let raw = body
        .sections
        .into_iter()
        .map(|s| RawSection {
            name: s.name,
            rows: s.rows,
            seats_per_row: s.seats_per_row,
            price: s.price,
        })
        .collect();
    let layout = SeatLayout::parse(raw)?;
    let job = seat_creation::request_seats(&deps, *id, layout, mode).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(JobAccepted {
            job_id: job.id,
            status: job.status,
        }))
}

/// A background job's status and progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = Job), (status = 404, description = "`job_not_found`", body = Problem)))]
pub async fn job(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Job::from(seat_creation::job(&deps, *id).await?)))
}

/// The seats of a schedule (cached 30 s ± 5 s, dropped on every seat change).
#[utoipa::path(get, path = "/api/v1/schedules/{id}/seats", tag = "catalog", params(("id" = Uuid, Path), SeatQuery),
    responses((status = 200, body = SeatMap), (status = 404, description = "`schedule_not_found`", body = Problem),
        (status = 422, description = "`invalid_field`: `status` other than `available`, `held`, `sold`", body = Problem)))]
pub async fn seats(deps: Data<Deps>, id: Path<Uuid>, query: Query<SeatQuery>) -> Result<HttpResponse, AppError> {
    Ok(json_body(
        seat_map::seat_map(&deps, *id, query.status.as_deref()).await?,
    ))
}

//! Concerts, schedules, seats and jobs. Reads are public; writes need an admin token.

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::{Data, Path};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AdminUser, Json, Query};
use crate::app::cache::JsonBody;
use crate::app::catalog::{self, Concert, ConcertDetails, ConcertPage, Job, JobMode, Schedule, SeatMap};
use crate::app::{AppError, Deps};
use crate::domain::catalog::{PageRequest, RawSection, SeatLayout};

fn json_body(body: JsonBody) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(body.to_vec())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConcert {
    #[schema(example = "Aurora Live 2027")]
    title: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1-based page (default 1).
    page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    size: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// RFC 3339; in the future, at most 5 years ahead.
    starts_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    name: String,
    rows: i64,
    seats_per_row: i64,
    /// Points per seat.
    price: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeats {
    /// Non-empty, unique names; at most 200,000 seats in all.
    sections: Vec<NewSection>,
}

#[derive(Deserialize, IntoParams)]
pub struct SeatCreationQuery {
    /// `stream` (default): a worker does the job, surviving crashes. `inline`: the API does it
    /// in-process (comparison mode; a crash leaves it unfinished).
    mode: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct SeatQuery {
    /// Only seats with this status: `available`, `held` or `sold`.
    status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobAccepted {
    job_id: Uuid,
    status: String,
}

/// Create a concert (admin).
#[utoipa::path(post, path = "/api/v1/concerts", tag = "catalog", request_body = NewConcert, security(("bearer" = [])),
    responses((status = 201, body = Concert), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_concert(
    deps: Data<Deps>,
    _: AdminUser,
    Json(body): Json<NewConcert>,
) -> Result<HttpResponse, AppError> {
    let concert = catalog::create_concert(&deps, &body.title, &body.description).await?;
    Ok(HttpResponse::Created().json(concert))
}

/// Concerts, oldest first (a stable order for paging).
#[utoipa::path(get, path = "/api/v1/concerts", tag = "catalog", params(PageQuery),
    responses((status = 200, body = ConcertPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_concerts(deps: Data<Deps>, query: Query<PageQuery>) -> Result<HttpResponse, AppError> {
    let page = PageRequest::parse(query.page, query.size)?;
    Ok(HttpResponse::Ok().json(catalog::list_concerts(&deps, page).await?))
}

/// A concert with its schedules and their total and available seats (cached 300 s ± 30 s).
#[utoipa::path(get, path = "/api/v1/concerts/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConcertDetails), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn concert(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(json_body(catalog::concert_details(&deps, *id).await?))
}

/// Add a schedule (performance) to a concert (admin).
#[utoipa::path(post, path = "/api/v1/concerts/{id}/schedules", tag = "catalog", params(("id" = Uuid, Path)),
    request_body = NewSchedule, security(("bearer" = [])),
    responses((status = 201, body = Schedule), (status = 404, body = Problem), (status = 422, body = Problem,
        content_type = "application/problem+json")))]
pub async fn create_schedule(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    Json(body): Json<NewSchedule>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Created().json(catalog::create_schedule(&deps, *id, body.starts_at).await?))
}

/// Create seats in bulk (admin): answers at once with a job to follow.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/seats", tag = "catalog", params(("id" = Uuid, Path), SeatCreationQuery),
    request_body = NewSeats, security(("bearer" = [])),
    responses((status = 202, body = JobAccepted, headers(("Location" = String, description = "/api/v1/jobs/{job_id}"))),
        (status = 404, body = Problem), (status = 422, body = Problem, content_type = "application/problem+json")))]
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
    let job = catalog::request_seats(&deps, *id, layout, mode).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(JobAccepted {
            job_id: job.id,
            status: job.status,
        }))
}

/// A background job's status and progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = Job), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn job(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(catalog::job(&deps, *id).await?))
}

/// The seats of a schedule (cached 30 s ± 5 s, dropped on every seat change).
#[utoipa::path(get, path = "/api/v1/schedules/{id}/seats", tag = "catalog", params(("id" = Uuid, Path), SeatQuery),
    responses((status = 200, body = SeatMap), (status = 404, body = Problem), (status = 422, body = Problem,
        content_type = "application/problem+json")))]
pub async fn seats(deps: Data<Deps>, id: Path<Uuid>, query: Query<SeatQuery>) -> Result<HttpResponse, AppError> {
    Ok(json_body(catalog::seat_map(&deps, *id, query.status.as_deref()).await?))
}

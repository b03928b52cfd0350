//! Venues, halls and seat plan versions (api.md "Venues"): reads are public, writes need an
//! admin. Plans are uploaded as JSON or CSV (`Content-Type: text/csv`, one line a seat) of up
//! to 32 MiB, exported in either shape, and drawn as SVG. The bodies are in [`dto`].

pub mod dto;

use actix_web::http::header;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use uuid::Uuid;

use super::catalog::dto::PageQuery;
use super::error::Problem;
use super::extract::{AdminUser, Json, PLAN_BODY_BYTES, Query, parse_json, read_capped, refuse_nul};
use crate::app::catalog::seat_picture;
use crate::app::venues::plans::{self, invalid_plan};
use crate::app::venues::{self, VenueFields};
use crate::app::{AppError, Deps};
use crate::domain::catalog::PageRequest;
use crate::domain::seat_plan::{self as seat_plan, PlanDocument, RawPlan, SeatPlan};

use dto::{
    ExportQuery, Hall, HallDetails, ImportQuery, NewHall, NewVenue, Plan, PlanBody, Venue, VenueDetails, VenuePage,
    page_of,
};

/// Create a venue (admin).
#[utoipa::path(post, path = "/api/v1/venues", tag = "venues", request_body = NewVenue, security(("bearer" = [])),
    responses((status = 201, body = Venue), (status = 403, description = "`admin_required`", body = Problem),
        (status = 422, description = "`invalid_field`: the detail names the field", body = Problem)))]
pub async fn create_venue(
    deps: Data<Deps>,
    _: AdminUser,
    Json(body): Json<NewVenue>,
) -> Result<HttpResponse, AppError> {
    let venue = venues::create_venue(
        &deps.db,
        VenueFields {
            name: &body.name,
            address: &body.address,
            time_zone: &body.time_zone,
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/venues/{}", venue.id)))
        .json(Venue::from(venue)))
}

/// Venues, oldest first.
#[utoipa::path(get, path = "/api/v1/venues", tag = "venues", params(PageQuery),
    responses((status = 200, body = VenuePage), (status = 422, description = "`invalid_field`: `page` or `size` out of range", body = Problem)))]
pub async fn list_venues(deps: Data<Deps>, query: Query<PageQuery>) -> Result<HttpResponse, AppError> {
    let page = PageRequest::parse(query.page, query.size)?;
    Ok(HttpResponse::Ok().json(page_of(venues::list_venues(&deps.db, page).await?)))
}

/// A venue and its halls.
#[utoipa::path(get, path = "/api/v1/venues/{id}", tag = "venues", params(("id" = Uuid, Path)),
    responses((status = 200, body = VenueDetails), (status = 404, description = "`venue_not_found`", body = Problem)))]
pub async fn venue(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    let v = venues::venue(&deps.db, *id).await?;
    Ok(HttpResponse::Ok().json(VenueDetails {
        id: v.venue.id,
        name: v.venue.name,
        address: v.venue.address,
        time_zone: v.venue.time_zone,
        created_at: v.venue.created_at,
        halls: v.halls.into_iter().map(Hall::from).collect(),
    }))
}

/// Change a venue's name, address and time zone (admin; every field, as on create).
#[utoipa::path(put, path = "/api/v1/venues/{id}", tag = "venues", params(("id" = Uuid, Path)), request_body = NewVenue,
    security(("bearer" = [])),
    responses((status = 200, body = Venue), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`venue_not_found`", body = Problem),
        (status = 422, description = "`invalid_field`", body = Problem)))]
pub async fn update_venue(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    Json(body): Json<NewVenue>,
) -> Result<HttpResponse, AppError> {
    let venue = venues::update_venue(
        &deps.db,
        *id,
        VenueFields {
            name: &body.name,
            address: &body.address,
            time_zone: &body.time_zone,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(Venue::from(venue)))
}

/// Delete a venue with its halls and plans (admin); 409 if a schedule was made from one.
#[utoipa::path(delete, path = "/api/v1/venues/{id}", tag = "venues", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`venue_not_found`", body = Problem),
        (status = 409, description = "`plan_in_use`", body = Problem)))]
pub async fn delete_venue(deps: Data<Deps>, _: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    venues::delete_venue(&deps.db, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add a hall to a venue (admin).
#[utoipa::path(post, path = "/api/v1/venues/{id}/halls", tag = "venues", params(("id" = Uuid, Path)), request_body = NewHall,
    security(("bearer" = [])),
    responses((status = 201, body = Hall), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`venue_not_found`", body = Problem),
        (status = 409, description = "`hall_exists`: the venue has a hall of that name", body = Problem),
        (status = 422, description = "`invalid_field`", body = Problem)))]
pub async fn create_hall(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    Json(body): Json<NewHall>,
) -> Result<HttpResponse, AppError> {
    let hall = venues::create_hall(&deps.db, *id, &body.name).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/halls/{}", hall.id)))
        .json(Hall::from(hall)))
}

/// A hall and its plan versions.
#[utoipa::path(get, path = "/api/v1/halls/{id}", tag = "venues", params(("id" = Uuid, Path)),
    responses((status = 200, body = HallDetails), (status = 404, description = "`hall_not_found`", body = Problem)))]
pub async fn hall(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    let (hall, versions) = venues::hall(&deps.db, *id).await?;
    Ok(HttpResponse::Ok().json(HallDetails {
        id: hall.id,
        venue_id: hall.venue_id,
        name: hall.name,
        created_at: hall.created_at,
        plans: versions.into_iter().map(Plan::from).collect(),
    }))
}

/// Rename a hall (admin).
#[utoipa::path(put, path = "/api/v1/halls/{id}", tag = "venues", params(("id" = Uuid, Path)), request_body = NewHall,
    security(("bearer" = [])),
    responses((status = 200, body = Hall), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`hall_not_found`", body = Problem),
        (status = 409, description = "`hall_exists`", body = Problem),
        (status = 422, description = "`invalid_field`", body = Problem)))]
pub async fn rename_hall(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    Json(body): Json<NewHall>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Hall::from(venues::rename_hall(&deps.db, *id, &body.name).await?)))
}

/// Delete a hall and its plans (admin); 409 if a schedule was made from one.
#[utoipa::path(delete, path = "/api/v1/halls/{id}", tag = "venues", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`hall_not_found`", body = Problem),
        (status = 409, description = "`plan_in_use`", body = Problem)))]
pub async fn delete_hall(deps: Data<Deps>, _: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    venues::delete_hall(&deps.db, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn is_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/csv")
        })
        .unwrap_or(false)
}

/// The uploaded plan, JSON or CSV, validated (422 `invalid_plan` naming every bad seat).
async fn uploaded_plan(req: &HttpRequest, payload: Payload, query: &ImportQuery) -> Result<SeatPlan, AppError> {
    let body = read_capped(&mut payload.into_inner(), PLAN_BODY_BYTES).await?;
    if is_csv(req) {
        if std::str::from_utf8(&body).is_err() {
            return Err(AppError::bad_request("invalid_body", "the CSV must be UTF-8 text"));
        }
        // U+0000 is text PostgreSQL cannot store: a rule of the plan, as for JSON bodies.
        if let Some(at) = body.iter().position(|&b| b == 0) {
            let line = 1 + body[..at].iter().filter(|&&b| b == b'\n').count();
            return Err(invalid_plan(seat_plan::PlanErrors {
                errors: vec![seat_plan::PlanError {
                    at: format!("line {line}"),
                    message: "must not contain U+0000".to_owned(),
                }],
                total: 1,
            }));
        }
        let categories = query.categories.as_deref().map(|list| {
            list.split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        });
        return SeatPlan::from_csv(&body, categories).map_err(invalid_plan);
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(AppError::bad_request(
            "unsupported_media_type",
            "a plan is JSON (Content-Type: application/json) or CSV (text/csv)",
        ));
    }
    if query.categories.is_some() {
        return Err(AppError::validation(
            "invalid_field",
            "categories: only for a CSV upload; a JSON plan lists its own",
        ));
    }
    let raw: RawPlan = parse_json(&body)?;
    refuse_nul(&body)?;
    SeatPlan::from_json(raw).map_err(invalid_plan)
}

const PLAN_ERRORS: &str = "`invalid_plan`: every bad seat named in `errors` (`at`, `message`; the first 100) with their number in `error_count`; nothing is stored";

/// Import a plan as the hall's next version (admin): JSON (`PlanBody`) or CSV with a header
/// line of the `PlanSeat` fields.
#[utoipa::path(post, path = "/api/v1/halls/{id}/plans", tag = "venues", params(("id" = Uuid, Path), ImportQuery),
    request_body(content((PlanBody = "application/json"), (String = "text/csv"))), security(("bearer" = [])),
    responses((status = 201, body = Plan, headers(("Location" = String, description = "/api/v1/halls/{id}/plans/{version}"))),
        (status = 400, description = "`body_too_large` (over 32 MiB), `malformed_json`, `unsupported_media_type`", body = Problem),
        (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`hall_not_found`", body = Problem),
        (status = 422, description = PLAN_ERRORS, body = Problem)))]
pub async fn import_plan(
    req: HttpRequest,
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    query: Query<ImportQuery>,
    payload: Payload,
) -> Result<HttpResponse, AppError> {
    let plan = uploaded_plan(&req, payload, &query).await?;
    let summary = plans::import(&deps.db, *id, &plan).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/halls/{}/plans/{}", summary.hall_id, summary.version),
        ))
        .json(Plan::from(summary)))
}

/// A hall's plan versions, oldest first.
#[utoipa::path(get, path = "/api/v1/halls/{id}/plans", tag = "venues", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Plan>), (status = 404, description = "`hall_not_found`", body = Problem)))]
pub async fn plans(deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    let list: Vec<Plan> = plans::versions(&deps.db, *id)
        .await?
        .into_iter()
        .map(Plan::from)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

fn etag(digest: &str, what: &str) -> String {
    format!("\"{what}-{}\"", &digest[..digest.len().min(32)])
}

fn not_modified(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

/// Export a plan version: JSON (`PlanBody`, every field written out) or CSV (`?format=csv`
/// or `Accept: text/csv`), with its digest as `ETag`.
#[utoipa::path(get, path = "/api/v1/halls/{id}/plans/{version}", tag = "venues",
    params(("id" = Uuid, Path), ("version" = i32, Path, minimum = 1), ExportQuery),
    responses((status = 200, content((PlanBody = "application/json"), (String = "text/csv")), headers(("ETag" = String))),
        (status = 304, description = "`If-None-Match` names this version's digest"),
        (status = 404, description = "`plan_not_found`", body = Problem),
        (status = 422, description = "`invalid_field`: `format` other than json or csv", body = Problem)))]
pub async fn plan(
    req: HttpRequest,
    deps: Data<Deps>,
    path: Path<(Uuid, i32)>,
    query: Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let accept_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    let csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        None => accept_csv,
        Some(other) => {
            return Err(AppError::validation(
                "invalid_field",
                format!("format: must be json or csv, got {other:?}"),
            ));
        }
    };
    let (hall_id, version) = path.into_inner();
    let summary = plans::summary(&deps.db, hall_id, version).await?;
    let tag = etag(&summary.digest, if csv { "csv" } else { "json" });
    if not_modified(&req, &tag) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, tag)).finish());
    }
    let (_, plan) = plans::load(&deps.db, hall_id, version).await?;
    let mut response = HttpResponse::Ok();
    response.insert_header((header::ETAG, tag));
    Ok(if csv {
        response
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"plan-{hall_id}-v{version}.csv\""),
            ))
            .body(plan.to_csv())
    } else {
        let document: PlanDocument = plan.to_document();
        response.json(document)
    })
}

/// Replace an unused plan version's places (admin); 409 `plan_in_use` once a schedule was
/// made from it (import a new version instead).
#[utoipa::path(put, path = "/api/v1/halls/{id}/plans/{version}", tag = "venues",
    params(("id" = Uuid, Path), ("version" = i32, Path, minimum = 1), ImportQuery),
    request_body(content((PlanBody = "application/json"), (String = "text/csv"))), security(("bearer" = [])),
    responses((status = 200, body = Plan),
        (status = 400, description = "`body_too_large` (over 32 MiB), `malformed_json`, `unsupported_media_type`", body = Problem),
        (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`plan_not_found`", body = Problem),
        (status = 409, description = "`plan_in_use`", body = Problem),
        (status = 422, description = PLAN_ERRORS, body = Problem)))]
pub async fn replace_plan(
    req: HttpRequest,
    deps: Data<Deps>,
    _: AdminUser,
    path: Path<(Uuid, i32)>,
    query: Query<ImportQuery>,
    payload: Payload,
) -> Result<HttpResponse, AppError> {
    let (hall_id, version) = path.into_inner();
    let plan = uploaded_plan(&req, payload, &query).await?;
    Ok(HttpResponse::Ok().json(Plan::from(plans::replace(&deps.db, hall_id, version, &plan).await?)))
}

/// Delete an unused plan version (admin).
#[utoipa::path(delete, path = "/api/v1/halls/{id}/plans/{version}", tag = "venues",
    params(("id" = Uuid, Path), ("version" = i32, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`plan_not_found`", body = Problem),
        (status = 409, description = "`plan_in_use`", body = Problem)))]
pub async fn delete_plan(deps: Data<Deps>, _: AdminUser, path: Path<(Uuid, i32)>) -> Result<HttpResponse, AppError> {
    let (hall_id, version) = path.into_inner();
    plans::delete(&deps.db, hall_id, version).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn svg(body: String, tag: String, cache: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, cache))
        // A picture, never a page: no script in it runs, nothing else is loaded by it.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(body)
}

/// A plan version drawn: places at their positions coloured by category, those never for
/// sale grey, accessible places ringed, a legend below.
#[utoipa::path(get, path = "/api/v1/halls/{id}/plans/{version}.svg", tag = "venues",
    params(("id" = Uuid, Path), ("version" = i32, Path, minimum = 1)),
    responses((status = 200, description = "`image/svg+xml`", content((String = "image/svg+xml")), headers(("ETag" = String))),
        (status = 304, description = "`If-None-Match` names this version's digest"),
        (status = 404, description = "`plan_not_found`", body = Problem)))]
pub async fn plan_svg(req: HttpRequest, deps: Data<Deps>, path: Path<(Uuid, i32)>) -> Result<HttpResponse, AppError> {
    let (hall_id, version) = path.into_inner();
    let summary = plans::summary(&deps.db, hall_id, version).await?;
    let tag = etag(&summary.digest, "svg");
    if not_modified(&req, &tag) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, tag)).finish());
    }
    let (_, plan) = plans::load(&deps.db, hall_id, version).await?;
    let (hall, _) = venues::hall(&deps.db, hall_id).await?;
    let title = format!("{} — plan version {version}", hall.name);
    // An unused version may still be replaced: browsers ask again (and get 304 if unchanged).
    Ok(svg(seat_picture::plan_picture(&title, &plan), tag, "no-cache"))
}

/// A schedule's seats drawn at their plan positions, coloured by state (available, held,
/// sold; places never for sale grey), categories and prices in the legend. A schedule made
/// by hand is drawn as a grid. States are as fresh as the seat map's.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/seats.svg", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, description = "`image/svg+xml`", content((String = "image/svg+xml")), headers(("ETag" = String))),
        (status = 304, description = "`If-None-Match` names the states drawn last time"),
        (status = 404, description = "`schedule_not_found`", body = Problem),
        (status = 503, description = "`seats_changing` (`Retry-After: 1`): seats were being added while it was drawn; \
            `overloaded` (`Retry-After: 1`): no turn came in time; `database_unavailable`, `dependency_unavailable` \
            (`Retry-After: 5`): PostgreSQL or Redis unavailable; nothing was done", body = Problem)))]
pub async fn schedule_svg(req: HttpRequest, deps: Data<Deps>, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    let (body, tag) = seat_picture::seat_picture(&deps, *id).await?;
    if not_modified(&req, &tag) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, tag)).finish());
    }
    Ok(svg(body, tag, "no-cache"))
}

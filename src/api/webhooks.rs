//! `/api/v1/admin/webhooks…`: webhook endpoints (admin) and their delivery log. Deliveries
//! themselves are the `notifications` worker role's; the headers and signature: docs/api.md.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AdminUser, Json};
use crate::app::webhooks::{self, Delivery, Endpoint};
use crate::app::{AppError, Deps};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `http://` or `https://`; its host must resolve to public addresses only.
    #[schema(example = "https://hooks.example.com/imticket", max_length = 2000)]
    pub url: String,
    /// The notices it wants, or `*` for all.
    #[schema(min_items = 1, max_items = 20, value_type = Vec<EventType>)]
    pub event_types: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

/// An event type an endpoint may subscribe to (`reservation.expiring`: the reminder
/// `IMTICKET_NOTIFY_HOLD_REMINDER_SECONDS` before an unpaid hold ends).
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of `event_types`' items; the values are read as strings
pub enum EventType {
    #[schema(rename = "queue.admitted")]
    QueueAdmitted,
    #[schema(rename = "reservation.created")]
    ReservationCreated,
    #[schema(rename = "reservation.expiring")]
    ReservationExpiring,
    #[schema(rename = "reservation.confirmed")]
    ReservationConfirmed,
    #[schema(rename = "reservation.expired")]
    ReservationExpired,
    #[schema(rename = "*")]
    All,
}

/// An endpoint just registered, with its secret (shown this once).
#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Secret {
    /// The new `whsec_…`; the previous one keeps signing for
    /// `IMTICKET_WEBHOOK_SECRET_OVERLAP_SECONDS`.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Endpoints {
    pub items: Vec<Endpoint>,
}

#[derive(Serialize, ToSchema)]
pub struct Deliveries {
    /// The latest 100 deliveries, newest first, each with its attempts.
    pub items: Vec<Delivery>,
}

/// Register a webhook endpoint (admin).
#[utoipa::path(post, path = "/api/v1/admin/webhooks", tag = "webhooks", request_body = NewEndpoint,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedEndpoint), (status = 403, description = "`admin_required`", body = Problem),
        (status = 422, description = "`invalid_field`: the url (not http(s), credentials, not public) or an event type", body = Problem)))]
pub async fn create(deps: Data<Deps>, _: AdminUser, Json(body): Json<NewEndpoint>) -> Result<HttpResponse, AppError> {
    if body.url.len() > 2000 {
        return Err(AppError::validation("invalid_field", "url: at most 2000 characters"));
    }
    let (endpoint, secret) = webhooks::create(
        &deps.db,
        &deps.webhooks,
        &body.url,
        &body.event_types,
        &body.description,
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedEndpoint { endpoint, secret }))
}

/// Every webhook endpoint (admin).
#[utoipa::path(get, path = "/api/v1/admin/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Endpoints), (status = 403, description = "`admin_required`", body = Problem)))]
pub async fn list(deps: Data<Deps>, _: AdminUser) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Endpoints {
        items: webhooks::list(&deps.db).await?,
    }))
}

/// One webhook endpoint (admin).
#[utoipa::path(get, path = "/api/v1/admin/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`webhook_not_found`", body = Problem)))]
pub async fn get(deps: Data<Deps>, _: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(webhooks::get(&deps.db, *id).await?))
}

/// Remove a webhook endpoint and its deliveries (admin).
#[utoipa::path(delete, path = "/api/v1/admin/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "removed"), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`webhook_not_found`", body = Problem)))]
pub async fn delete(deps: Data<Deps>, _: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    webhooks::delete(&deps.db, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new secret for the endpoint; the old one keeps signing for the overlap (admin).
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Secret), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`webhook_not_found`", body = Problem)))]
pub async fn rotate(deps: Data<Deps>, _: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Secret {
        secret: webhooks::rotate(&deps.db, *id, deps.config.notifications.secret_overlap).await?,
    }))
}

/// The endpoint's delivery log: its latest deliveries with every attempt (admin).
#[utoipa::path(get, path = "/api/v1/admin/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Deliveries), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`webhook_not_found`", body = Problem)))]
pub async fn deliveries(deps: Data<Deps>, _: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Deliveries {
        items: webhooks::deliveries(&deps.db, *id).await?,
    }))
}

//! `/api/v1/users/me/notifications`: which notices the caller is sent, and by which channels.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::{AuthUser, Json};
use super::rate_limits::limit;
use crate::app::{AppError, Deps, notices};
use crate::domain::notice::Preferences;
use crate::domain::rate_limit::Policy;

/// What the caller is told, and how. Without a choice made: everything, by every channel.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    /// Mail to the account's address.
    pub email: bool,
    /// The organiser's webhook endpoints (which may pass the notice on by text or push).
    pub webhook: bool,
    /// Notices not wanted on any channel: `queue.admitted`, `reservation.created`,
    /// `reservation.expiring`, `reservation.confirmed`, `reservation.expired`; each at most
    /// once (422 otherwise).
    #[schema(max_items = 5, value_type = Vec<Notice>)]
    pub muted: Vec<String>,
}

/// A notice a fan may mute.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of `muted`'s items; the values are read as strings
pub enum Notice {
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
}

impl From<Preferences> for NotificationPreferences {
    fn from(p: Preferences) -> Self {
        Self {
            email: p.email,
            webhook: p.webhook,
            muted: p.muted,
        }
    }
}

/// The caller's notification preferences.
#[utoipa::path(get, path = "/api/v1/users/me/notifications", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationPreferences), (status = 401, body = Problem)))]
pub async fn get(deps: Data<Deps>, AuthUser(user): AuthUser) -> Result<HttpResponse, AppError> {
    let prefs = notices::preferences(&deps, user.user_id).await?;
    Ok(HttpResponse::Ok().json(NotificationPreferences::from(prefs)))
}

/// Replace the caller's notification preferences (every field is required); answers them.
#[utoipa::path(put, path = "/api/v1/users/me/notifications", tag = "notifications",
    request_body = NotificationPreferences, security(("bearer" = [])),
    responses((status = 200, body = NotificationPreferences), (status = 401, body = Problem),
        (status = 422, body = Problem, description = "`invalid_field`: an unknown notice in `muted`, or one named twice")))]
pub async fn put(
    req: HttpRequest,
    deps: Data<Deps>,
    AuthUser(user): AuthUser,
    Json(body): Json<NotificationPreferences>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::UserWrites, &user.user_id.to_string()).await?;
    let prefs = Preferences::new(body.email, body.webhook, body.muted)?;
    notices::set_preferences(&deps, user.user_id, &prefs).await?;
    Ok(HttpResponse::Ok().json(NotificationPreferences::from(prefs)))
}

//! `POST /api/v1/admin/concerts/{id}/queue/pause` and `/resume` (admin): stop and restart a
//! concert's admission. How it works: docs/waiting-room.md ("Pausing admission").

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::AdminUser;
use crate::app::waiting_room::set_admission_paused;
use crate::app::{AppError, Deps};

/// A concert's line after the change.
#[derive(Serialize, ToSchema)]
pub struct QueueLine {
    pub concert_id: Uuid,
    /// Nobody is admitted while this is true.
    pub paused: bool,
    pub waiting: u64,
    pub pre_queue: u64,
    pub active: u64,
    pub admitted_last_minute: u64,
    pub sold_out: bool,
}

async fn change(deps: &Deps, admin: &AdminUser, concert: Uuid, paused: bool) -> Result<HttpResponse, AppError> {
    let stats = set_admission_paused(deps, concert, paused, admin.0.user_id).await?;
    Ok(HttpResponse::Ok().json(QueueLine {
        concert_id: stats.concert_id,
        paused: stats.paused,
        waiting: stats.waiting,
        pre_queue: stats.pre_queue,
        active: stats.active,
        admitted_last_minute: stats.admitted_last_minute,
        sold_out: stats.sold_out,
    }))
}

/// Pause the concert's admission (admin): the promoter admits nobody and joiners wait in line;
/// fans already admitted keep their slots. Pausing a paused line changes nothing.
#[utoipa::path(post, path = "/api/v1/admin/concerts/{id}/queue/pause", tag = "waiting room",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = QueueLine), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`concert_not_found`", body = Problem)))]
pub async fn pause(deps: Data<Deps>, admin: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    change(&deps, &admin, *id, true).await
}

/// Resume the concert's admission (admin): the next promoter round admits at the usual rate.
#[utoipa::path(post, path = "/api/v1/admin/concerts/{id}/queue/resume", tag = "waiting room",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = QueueLine), (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`concert_not_found`", body = Problem)))]
pub async fn resume(deps: Data<Deps>, admin: AdminUser, id: Path<Uuid>) -> Result<HttpResponse, AppError> {
    change(&deps, &admin, *id, false).await
}

//! The waiting room over HTTP: join, status, leave, and the gate extractor the booking
//! endpoints use ([`ActiveQueue`]).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::{Data, Path};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::AuthUser;
use super::rate_limits::limit;
use crate::app::tokens::QueuePass;
use crate::app::waiting_room::{self, ActivePass, QueueView};
use crate::app::{AppError, Deps};
use crate::domain::queue::QueueStatus;
use crate::domain::rate_limit::Policy;

/// The header that carries a queue token.
pub const QUEUE_TOKEN_HEADER: &str = "x-queue-token";

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueJoined {
    /// Send it as `X-Queue-Token` to `/queue/status`, `DELETE /queue` and the booking endpoints.
    pub queue_token: String,
    pub status: QueueStatus,
    /// 1-based among the waiting; 0 when active; null in the pre-queue.
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub poll_after_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatusBody {
    pub status: QueueStatus,
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    /// When the active slot ends (null unless active).
    pub active_until: Option<DateTime<Utc>>,
    pub poll_after_seconds: u64,
}

impl From<QueueView> for QueueStatusBody {
    fn from(v: QueueView) -> Self {
        Self {
            status: v.status,
            position: v.position,
            eta_seconds: v.eta_seconds,
            active_until: v.active_until,
            poll_after_seconds: v.poll_after_seconds,
        }
    }
}

fn deps_of(req: &HttpRequest) -> Result<Data<Deps>, AppError> {
    req.app_data::<Data<Deps>>()
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("dependencies are not registered with the app")))
}

/// A verified queue token (`X-Queue-Token`): signature, audience `queue`, expiry. Says
/// nothing yet about the entry's state.
pub struct QueueToken(pub QueuePass);

fn queue_pass(req: &HttpRequest) -> Result<QueuePass, AppError> {
    let deps = deps_of(req)?;
    let token = req
        .headers()
        .get(QUEUE_TOKEN_HEADER)
        .ok_or_else(|| AppError::unauthorized("missing_queue_token", "a queue token is required (X-Queue-Token)"))?
        .to_str()
        .map_err(|_| AppError::unauthorized("invalid_queue_token", "the queue token is invalid or expired"))?;
    deps.tokens.verify_queue(token.trim())
}

impl FromRequest for QueueToken {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(queue_pass(req).map(QueueToken))
    }
}

/// The booking gate: an access token (401 otherwise), a valid queue token for the same user
/// (401 if forged, expired, malformed or not a queue token), whose entry is active now (403
/// `queue_not_active` otherwise). The handler then calls
/// [`ActivePass::for_concert`] with the concert of the schedule it works on.
pub struct ActiveQueue(pub ActivePass);

impl FromRequest for ActiveQueue {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload).into_inner();
        let pass = queue_pass(req);
        let deps = deps_of(req);
        Box::pin(async move {
            let AuthUser(principal) = user?;
            let (pass, deps) = (pass?, deps?);
            let active = waiting_room::require_active(&deps, pass, principal.user_id).await?;
            Ok(ActiveQueue(active))
        })
    }
}

/// Join a concert's waiting room (or the pre-queue before `sale_opens_at`). Joining again
/// returns the same entry.
#[utoipa::path(post, path = "/api/v1/concerts/{id}/queue", tag = "waiting room", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = QueueJoined), (status = 404, body = Problem, description = "`concert_not_found`")))]
pub async fn join(
    req: HttpRequest,
    deps: Data<Deps>,
    AuthUser(user): AuthUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::UserWrites, &user.user_id.to_string()).await?;
    let joined = waiting_room::join(&deps, user.user_id, *id).await?;
    let view = QueueStatusBody::from(joined.view);
    Ok(HttpResponse::Ok().json(QueueJoined {
        queue_token: joined.queue_token,
        status: view.status,
        position: view.position,
        eta_seconds: view.eta_seconds,
        poll_after_seconds: view.poll_after_seconds,
    }))
}

/// Where the entry of `X-Queue-Token` stands.
#[utoipa::path(get, path = "/api/v1/queue/status", tag = "waiting room",
    params(("X-Queue-Token" = String, Header, description = "from the join")),
    responses((status = 200, body = QueueStatusBody)))]
pub async fn status(
    req: HttpRequest,
    deps: Data<Deps>,
    QueueToken(pass): QueueToken,
) -> Result<HttpResponse, AppError> {
    // Beyond what `poll_after_seconds` asks for.
    limit(&req, &deps, Policy::QueueStatus, &pass.user_id.to_string()).await?;
    let view = waiting_room::status(&deps, pass).await?;
    Ok(HttpResponse::Ok().json(QueueStatusBody::from(view)))
}

/// Leave the line, or give the active slot back. 204 also when the entry is already gone.
#[utoipa::path(delete, path = "/api/v1/queue", tag = "waiting room",
    params(("X-Queue-Token" = String, Header, description = "from the join")),
    responses((status = 204, description = "left (or already ended)")))]
pub async fn leave(deps: Data<Deps>, QueueToken(pass): QueueToken) -> Result<HttpResponse, AppError> {
    waiting_room::leave(&deps, pass).await?;
    Ok(HttpResponse::NoContent().finish())
}

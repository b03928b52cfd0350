//! Liveness, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::error::Problem;
use crate::app::{AppError, Deps};

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` (live) or `ready`.
    status: &'static str,
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "operational", responses((status = 200, body = Health)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Whether this process is draining: from SIGTERM until it stops accepting connections
/// (`IMTICKET_HTTP_DRAIN_SECONDS`) it serves every route as before, but its readiness answers
/// 503 `draining`, so load balancers send it nothing new.
#[derive(Debug, Clone, Default)]
pub struct Draining(CancellationToken);

impl Draining {
    /// Draining once `token` is cancelled.
    pub fn from_token(token: CancellationToken) -> Self {
        Self(token)
    }

    pub fn is_draining(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// 200 when PostgreSQL and Redis answer; 503 naming what is down otherwise, or `draining`
/// while the process is about to stop.
#[utoipa::path(get, path = "/health/ready", tag = "operational", responses(
    (status = 200, body = Health),
    (status = 503, description = "`dependency_unavailable` (the detail names the dependency), or `draining`: \
        the process got SIGTERM and stops once balancers have taken it out; it still serves meanwhile",
        body = Problem, content_type = "application/problem+json"),
))]
pub async fn ready(deps: Data<Deps>, draining: Option<Data<Draining>>) -> Result<HttpResponse, AppError> {
    const TIMEOUT: Duration = Duration::from_secs(2);
    if draining.is_some_and(|d| d.is_draining()) {
        return Err(AppError::unavailable(
            "draining",
            "not ready: this process is stopping (it still serves what reaches it)",
            5,
        ));
    }
    let (db, redis) = tokio::join!(crate::infra::postgres::ping(&deps.db, TIMEOUT), deps.redis.ping());
    let mut down = Vec::new();
    if let Err(err) = db {
        tracing::warn!(error = %format!("{err:#}"), "readiness: postgres is down");
        down.push("postgres");
    }
    if let Err(err) = redis {
        tracing::warn!(error = %format!("{err:#}"), "readiness: redis is down");
        down.push("redis");
    }
    if down.is_empty() {
        Ok(HttpResponse::Ok().json(Health { status: "ready" }))
    } else {
        Err(AppError::unavailable(
            "dependency_unavailable",
            format!("not ready: {} unavailable", down.join(" and ")),
            5,
        ))
    }
}

/// Prometheus text exposition of this process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operational",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::telemetry::metrics_handle().render())
}

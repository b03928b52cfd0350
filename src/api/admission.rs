//! Slow clients and overload, decided before any work is done for a request:
//!
//! - its body is read in full first, within `IMTICKET_HTTP_BODY_TIMEOUT_MS` and at most
//!   [`MAX_BODY_BYTES`]: a client trickling a body holds no turn (408 `request_timeout`, and the
//!   connection is closed). Slow request heads are actix's `client_request_timeout`
//!   (`IMTICKET_HTTP_HEADER_TIMEOUT_MS`).
//! - then it takes a turn: at most `IMTICKET_HTTP_MAX_IN_FLIGHT` requests are served at once per
//!   process in each [`Lane`]; the rest wait, for at most `IMTICKET_HTTP_QUEUE_TIMEOUT_MS`, then
//!   are answered 503 `overloaded` with `Retry-After`. So past what the machine can serve,
//!   requests are refused early and on purpose, instead of all being accepted and all queueing
//!   behind each other into the Redis and PostgreSQL timeouts (which measure from the moment a
//!   command is sent, queueing included). The waiting room's requests have a lane of their own:
//!   a fan's poll never waits for a turn behind holds and payments waiting for PostgreSQL.
//!
//! The operational routes (`/health/*`, `/metrics`) are never held back: an overloaded instance
//! must still say so.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, ResponseError};

use tokio::sync::Semaphore;

use super::extract::{MAX_BODY_BYTES, PLAN_BODY_BYTES, bearer_principal, read_capped, too_large};
use crate::app::AppError;
use crate::app::error::ErrorKind;
use crate::config::HttpSettings;

/// Which turns a request waits for. In an on-sale the waiting room's requests (join, status,
/// leave, events: Redis, and cached reads) are most of the traffic and each is short; holds and
/// payments wait for PostgreSQL. With one set of turns, the polls queued behind bookings that
/// held every turn while waiting for a pooled connection (on-sale status p99 450 ms against
/// 157 ms with turns unlimited; docs/PERFORMANCE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    WaitingRoom = 0,
    Other = 1,
}

impl Lane {
    fn of(method: &actix_web::http::Method, path: &str) -> Self {
        let line = path == "/api/v1/queue"
            || path.starts_with("/api/v1/queue/")
            || (method == actix_web::http::Method::POST
                && path
                    .strip_prefix("/api/v1/concerts/")
                    .and_then(|rest| rest.strip_suffix("/queue"))
                    .is_some_and(|id| !id.is_empty() && !id.contains('/')));
        if line { Lane::WaitingRoom } else { Lane::Other }
    }

    fn label(self) -> &'static str {
        match self {
            Lane::WaitingRoom => "waiting_room",
            Lane::Other => "other",
        }
    }
}

/// The turns of one lane.
struct Turns {
    free: Semaphore,
    waiting: AtomicUsize,
}

/// One per process, shared by its HTTP worker threads.
pub struct Admission {
    lanes: [Turns; 2],
    capacity: usize,
    queue_timeout: Duration,
    body_timeout: Duration,
}

impl Admission {
    pub fn new(settings: &HttpSettings) -> Arc<Self> {
        let turns = || Turns {
            free: Semaphore::new(settings.max_in_flight),
            waiting: AtomicUsize::new(0),
        };
        Arc::new(Self {
            lanes: [turns(), turns()],
            capacity: settings.max_in_flight,
            queue_timeout: settings.queue_timeout,
            body_timeout: settings.body_timeout,
        })
    }

    fn gauges(&self, lane: Lane) {
        let turns = &self.lanes[lane as usize];
        let in_flight = self.capacity - turns.free.available_permits();
        metrics::gauge!("http_requests_in_flight", "lane" => lane.label()).set(in_flight as f64);
        metrics::gauge!("http_requests_waiting", "lane" => lane.label())
            .set(turns.waiting.load(Ordering::Relaxed) as f64);
    }
}

fn is_operational(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}

pub async fn admit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(admission) = req.app_data::<Data<Admission>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    if is_operational(req.path()) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }

    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let limit = body_limit(&req);
    if declared.is_some_and(|len| len > limit) {
        return Ok(refuse(req, too_large(limit), true));
    }
    if has_body(&req) {
        let mut payload = req.take_payload();
        match tokio::time::timeout(admission.body_timeout, read_capped(&mut payload, limit)).await {
            Ok(Ok(body)) => req.set_payload(Payload::from(body.freeze())),
            Ok(Err(err)) => return Ok(refuse(req, err, false)),
            Err(_) => {
                metrics::counter!("http_shed_total", "reason" => "body_timeout").increment(1);
                let err = AppError::new(
                    ErrorKind::RequestTimeout,
                    "request_timeout",
                    format!(
                        "the request body did not arrive within {} ms",
                        admission.body_timeout.as_millis()
                    ),
                );
                return Ok(refuse(req, err, true));
            }
        }
    }

    let lane = Lane::of(req.method(), req.path());
    let turns = &admission.lanes[lane as usize];
    turns.waiting.fetch_add(1, Ordering::Relaxed);
    admission.gauges(lane);
    let turn = tokio::time::timeout(admission.queue_timeout, turns.free.acquire()).await;
    turns.waiting.fetch_sub(1, Ordering::Relaxed);
    let Ok(Ok(_turn)) = turn else {
        metrics::counter!("http_shed_total", "reason" => "overloaded").increment(1);
        admission.gauges(lane);
        let err = AppError::unavailable(
            "overloaded",
            "the server is at capacity; retry after the time in Retry-After",
            1,
        );
        return Ok(refuse(req, err, false));
    };
    admission.gauges(lane);
    let res = next.call(req).await;
    drop(_turn);
    admission.gauges(lane);
    res.map(ServiceResponse::map_into_left_body)
}

/// [`PLAN_BODY_BYTES`] for a seat plan upload by an admin; [`MAX_BODY_BYTES`] for every other
/// request (so nobody else can make a process buffer more).
fn body_limit(req: &ServiceRequest) -> usize {
    let method = req.method();
    if method != actix_web::http::Method::POST && method != actix_web::http::Method::PUT {
        return MAX_BODY_BYTES;
    }
    let Some(rest) = req.path().strip_prefix("/api/v1/halls/") else {
        return MAX_BODY_BYTES;
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let plan_upload = matches!(parts.as_slice(), [_, "plans"] | [_, "plans", _]);
    let admin = || bearer_principal(req.request()).is_ok_and(|p| p.role == crate::domain::user::Role::Admin);
    if plan_upload && admin() {
        PLAN_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Answers `err` without calling the handler; `close` ends the connection (a client that
/// cannot send its body in time is not kept for another request).
fn refuse<B>(req: ServiceRequest, err: AppError, close: bool) -> ServiceResponse<EitherBody<B>> {
    let mut response = err.error_response();
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    req.into_response(response).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn the_waiting_rooms_requests_and_only_they_take_its_lane() {
        let id = "0192f0c4-4d2b-7c1e-9a55-3f1d2c3b4a59";
        for (method, path) in [
            (Method::POST, format!("/api/v1/concerts/{id}/queue")),
            (Method::GET, "/api/v1/queue/status".to_owned()),
            (Method::DELETE, "/api/v1/queue".to_owned()),
            (Method::GET, "/api/v1/queue/events".to_owned()),
            (Method::POST, "/api/v1/queue/events/token".to_owned()),
        ] {
            assert_eq!(Lane::of(&method, &path), Lane::WaitingRoom, "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/api/v1/reservations".to_owned()),
            (Method::GET, format!("/api/v1/concerts/{id}")),
            (Method::GET, format!("/api/v1/concerts/{id}/queue")),
            (Method::POST, format!("/api/v1/admin/concerts/{id}/queue/pause")),
            (Method::POST, "/api/v1/concerts//queue".to_owned()),
            (Method::POST, format!("/api/v1/concerts/{id}/x/queue")),
            (Method::GET, "/api/v1/queues".to_owned()),
        ] {
            assert_eq!(Lane::of(&method, &path), Lane::Other, "{method} {path}");
        }
    }
}

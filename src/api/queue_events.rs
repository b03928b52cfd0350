//! `GET /api/v1/queue/events`: the caller's queue entry as Server-Sent Events, and
//! `POST /api/v1/queue/events/token`: the short-lived token a browser's `EventSource` (which
//! cannot send `X-Queue-Token`) puts in the query. The stream's behaviour: docs/api.md.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::Problem;
use super::extract::Query;
use super::rate_limits::limit;
use super::waiting_room::{QUEUE_TOKEN_HEADER, QueueStatusBody, QueueToken};
use crate::app::queue_events::{StreamSlot, is_final, state_id};
use crate::app::tokens::{QUEUE_EVENTS_TOKEN_TTL, QueuePass};
use crate::app::{AppError, Deps, waiting_room};
use crate::domain::rate_limit::Policy;

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEventsToken {
    /// For `GET /queue/events?token=…`; valid for `expires_in` seconds, for this entry only.
    pub token: String,
    pub expires_in: u64,
}

/// One Server-Sent Event of `GET /queue/events`, as a client's parser sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEvent {
    /// `status`.
    pub event: Option<String>,
    /// A hash of the state: send it back as `Last-Event-ID`.
    pub id: Option<String>,
    /// A `QueueStatusBody` as JSON text.
    #[schema(
        example = r#"{"status":"waiting","position":250,"eta_seconds":3,"active_until":null,"poll_after_seconds":2}"#
    )]
    pub data: String,
    /// Reconnect delay (ms), in the stream's first message.
    pub retry: Option<u64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A token from `POST /queue/events/token`, for clients that cannot send `X-Queue-Token`
    /// (a browser's `EventSource`). Ignored when the header is sent; a malformed one is a
    /// 400 `invalid_query` either way.
    #[param(pattern = "^[A-Za-z0-9_.=-]{1,4096}$")]
    pub token: Option<String>,
}

/// A short-lived token for `GET /queue/events?token=`: a browser's `EventSource` cannot send
/// the `X-Queue-Token` header.
#[utoipa::path(post, path = "/api/v1/queue/events/token", tag = "waiting room",
    params(("X-Queue-Token" = String, Header, description = "from the join")),
    responses((status = 200, body = QueueEventsToken)))]
pub async fn token(deps: Data<Deps>, QueueToken(pass): QueueToken) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(QueueEventsToken {
        token: deps.tokens.issue_queue_events(pass)?,
        expires_in: QUEUE_EVENTS_TOKEN_TTL.as_secs(),
    }))
}

/// What the OpenAPI document's pattern for `token` allows: the characters of a JWT, 1–4096.
fn well_formed(token: &str) -> bool {
    (1..=4096).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'=' | b'-'))
}

fn pass_of(req: &HttpRequest, deps: &Deps, query: &EventsQuery) -> Result<QueuePass, AppError> {
    if query.token.as_deref().is_some_and(|token| !well_formed(token)) {
        return Err(AppError::bad_request(
            "invalid_query",
            "token: must be 1-4096 characters of A-Z a-z 0-9 _ . = -",
        ));
    }
    if let Some(value) = req.headers().get(QUEUE_TOKEN_HEADER) {
        let token = value
            .to_str()
            .map_err(|_| AppError::unauthorized("invalid_queue_token", "the queue token is invalid or expired"))?;
        return deps.tokens.verify_queue(token.trim());
    }
    match &query.token {
        Some(token) => deps.tokens.verify_queue_events(token),
        None => Err(AppError::unauthorized(
            "missing_queue_token",
            "a queue token is required (X-Queue-Token, or ?token= from POST /queue/events/token)",
        )),
    }
}

/// The entry of `X-Queue-Token` (or `?token=`), pushed as Server-Sent Events: an `event:
/// status` with the same JSON as `GET /queue/status` whenever it changes, `id:` a hash of the
/// state (send it back as `Last-Event-ID` to skip an unchanged first event), a keep-alive
/// comment on an idle stream, and a last event when the entry is done, expired or sold out.
#[utoipa::path(get, path = "/api/v1/queue/events", tag = "waiting room",
    params(("X-Queue-Token" = Option<String>, Header, description = "from the join (or use `token`)"),
        ("Last-Event-ID" = Option<String>, Header, description = "the `id` of the last event received"),
        EventsQuery),
    responses((status = 200, description = "`text/event-stream`: `event: status` with a `QueueStatusBody` as `data`",
            content((QueueEvent = "text/event-stream"))),
        (status = 503, description = "`too_many_streams`: this process keeps `IMTICKET_SSE_MAX_STREAMS` open (Retry-After)", body = Problem)))]
pub async fn events(req: HttpRequest, deps: Data<Deps>, query: Query<EventsQuery>) -> Result<HttpResponse, AppError> {
    let pass = pass_of(&req, &deps, &query)?;
    limit(&req, &deps, Policy::QueueStatus, &pass.user_id.to_string()).await?;
    let slot = deps.queue_streams.open()?;
    // The first state is read before answering: a stream that cannot start is an error now.
    let view = waiting_room::status(&deps, pass).await?;
    let last_seen = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    let keepalive = deps.config.waiting_room.sse_keepalive;
    let now = tokio::time::Instant::now();
    let ends_at = now + deps.config.waiting_room.sse_max_lifetime;
    let stream = Watch {
        closing: deps.queue_streams.closing(),
        deps: deps.into_inner().as_ref().clone(),
        pass,
        last_id: last_seen,
        view: Some(view),
        next_read: now,
        last_sent: now,
        ends_at,
        keepalive,
        _slot: slot,
        ended: false,
    };
    // Reconnect after 2–5 s: clients dropped together (a deploy) come back spread out.
    let retry_ms = rand::rng().random_range(2_000..5_000);
    let head =
        futures_util::stream::once(async move { Ok::<_, AppError>(Bytes::from(format!("retry: {retry_ms}\n\n"))) });
    let body = futures_util::StreamExt::chain(head, futures_util::stream::unfold(stream, Watch::next));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // No buffering by a proxy in front (nginx reads this).
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// One open stream. It reads its entry when polling would have (`poll_after_seconds` of the
/// last state read), sends the state when it differs from the last one sent, a comment when
/// nothing was sent for the keep-alive interval, and ends after a final state, on drain, or
/// when Redis cannot be read (the client reconnects).
struct Watch {
    deps: Deps,
    pass: QueuePass,
    closing: tokio_util::sync::CancellationToken,
    /// The id of the last state the client has.
    last_id: Option<String>,
    /// A state read and not compared yet.
    view: Option<waiting_room::QueueView>,
    next_read: tokio::time::Instant,
    last_sent: tokio::time::Instant,
    /// `IMTICKET_SSE_MAX_SECONDS` after the start: the stream ends (the client reconnects).
    ends_at: tokio::time::Instant,
    keepalive: Duration,
    _slot: StreamSlot,
    ended: bool,
}

impl Watch {
    /// The next chunk of the stream, or `None` at its end.
    async fn next(mut self) -> Option<(Result<Bytes, AppError>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            let now = tokio::time::Instant::now();
            if let Some(view) = self.view.take() {
                let last = is_final(&view);
                self.next_read = now + Duration::from_secs(view.poll_after_seconds.max(1));
                let json = serde_json::to_string(&QueueStatusBody::from(view)).unwrap_or_default();
                let id = state_id(&json);
                if last || self.last_id.as_deref() != Some(id.as_str()) {
                    let event = format!("event: status\nid: {id}\ndata: {json}\n\n");
                    self.last_id = Some(id);
                    self.ended = last;
                    self.last_sent = now;
                    metrics::counter!("sse_events_sent_total").increment(1);
                    return Some((Ok(Bytes::from(event)), self));
                }
            }
            let keepalive_at = self.last_sent + self.keepalive;
            tokio::select! {
                _ = self.closing.cancelled() => return None,
                _ = tokio::time::sleep_until(self.ends_at) => return None,
                _ = tokio::time::sleep_until(self.next_read.min(keepalive_at)) => {}
            }
            let now = tokio::time::Instant::now();
            if now >= self.next_read {
                match waiting_room::status(&self.deps, self.pass).await {
                    Ok(view) => self.view = Some(view),
                    Err(err) => {
                        tracing::debug!(error = %err, "a queue stream could not read its entry; ending it");
                        return None;
                    }
                }
            } else if now >= keepalive_at {
                self.last_sent = now;
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), self));
            }
        }
    }
}

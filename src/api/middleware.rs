//! Per-request observability: a request id, a named span, an access log line and the
//! `http_requests_total` / `http_request_duration_seconds` metrics labelled by route template,
//! and the security headers every response carries.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller-supplied id is kept when it is short and plain, so traces join up across services;
/// anything else is replaced rather than echoed into logs.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Methods outside this set share one label value so clients cannot grow the label space.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = method_label(req.method());
    let span = tracing::info_span!("http request", request_id = %id, method, route = tracing::field::Empty,
        otel.kind = "server");
    // A caller's W3C `traceparent` makes this request part of its trace (traces exported only).
    crate::telemetry::trace_context::set_remote_parent(
        &span,
        req.headers().get("traceparent").and_then(|v| v.to_str().ok()),
    );
    let mut res = next.call(req).instrument(span.clone()).await?;

    // The route template (`/api/v1/concerts/{id}`), never the raw path: ids must not become
    // label values. Requests that matched no route share one value.
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.record("route", route.as_str());
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request finished"));

    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    secure(res.headers_mut());
    Ok(res)
}

/// Headers every response carries: the API serves JSON only, never a page to frame, sniff or
/// cache in a shared cache. A handler that chose its own `Cache-Control` or
/// `Content-Security-Policy` or `Referrer-Policy` (the console's pages, the seat pictures)
/// keeps it.
/// (`Strict-Transport-Security` belongs to the TLS-terminating proxy in front.)
fn secure(headers: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header;
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

//! The one place where application errors become HTTP responses (RFC 9457 problem+json).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::{AppError, ErrorKind};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document. `code` is stable; clients switch on it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "urn:imticket:problem:seat_unavailable", "title": "Conflict",
    "status": 409, "detail": "one of the seats is no longer available", "code": "seat_unavailable"}))]
pub struct Problem {
    /// `urn:imticket:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for humans; names the offending field for input errors.
    pub detail: String,
    /// Stable snake_case error code.
    pub code: String,
    /// Extension members of some problems (e.g. `taken_seat_ids` of `seat_unavailable`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        status_of(self.kind)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // A request shed on purpose is counted (`http_shed_total`), not logged: under overload a
        // line per refusal would add to the load it sheds.
        if status.is_server_error() && self.code != "overloaded" {
            // The only place a failed request's cause is logged; the body stays opaque.
            tracing::error!(error.code = self.code, error.cause_chain = ?self.source_chain(), "request failed");
        }
        let problem = Problem {
            kind: format!("urn:imticket:problem:{}", self.code),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            extensions: self
                .extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        if status == StatusCode::UNAUTHORIZED {
            let challenge = if self.code == "invalid_token" {
                r#"Bearer error="invalid_token""#
            } else {
                "Bearer"
            };
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(problem)
    }
}

/// Unknown routes.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::not_found("not_found", "no such resource"))
}

/// A known route called with a method it does not serve; `allow` lists the ones it does
/// (RFC 9110 §15.5.6: a 405 must carry `Allow`).
pub async fn method_not_allowed(allow: String) -> HttpResponse {
    let mut response = AppError::new(
        ErrorKind::MethodNotAllowed,
        "method_not_allowed",
        format!("this method is not allowed on this resource; allowed: {allow}"),
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Path segments that do not parse (e.g. a malformed UUID). The detail names the segment
/// (`id: must be a UUID`) rather than repeating the parser's message. The deserializer does not
/// say which segment failed, so for UUIDs it is the segments that are not one; otherwise all
/// of the route's segments are named.
pub fn path_error(err: actix_web::error::PathError, req: &actix_web::HttpRequest) -> actix_web::Error {
    let expects_uuid = err.to_string().contains("UUID parsing failed");
    let segments: Vec<&str> = req
        .match_info()
        .iter()
        .filter(|(_, value)| !expects_uuid || uuid::Uuid::parse_str(value).is_err())
        .map(|(name, _)| name)
        .collect();
    let named = if segments.is_empty() {
        "path".to_owned()
    } else {
        segments.join(", ")
    };
    let reason = if expects_uuid { "must be a UUID" } else { "is not valid" };
    AppError::bad_request("invalid_path", format!("{named}: {reason}")).into()
}

/// Query strings that do not parse, for handlers that use actix's `web::Query`; those that
/// use [`super::extract::Query`] get a detail naming the parameter.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    AppError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
}

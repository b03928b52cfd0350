//! The one application error: a kind (which the API maps to an HTTP status), a stable
//! snake_case `code` clients may switch on, a human `detail`, and for internal failures the
//! cause chain, which is logged and never shown to clients.

use std::fmt;

use crate::domain::InvalidField;
use crate::domain::rate_limit::Limited;
use crate::infra::postgres::error::{database_unavailable, violated_constraint};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed input: bad JSON, wrong content type, oversized body, bad path or query.
    BadRequest,
    /// Well-formed input that breaks a rule (422).
    Validation,
    Unauthorized,
    /// The client did not send its request in time (408; the connection is closed).
    RequestTimeout,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PaymentRequired,
    TooManyRequests,
    /// A dependency is down; the operation was not done and may be retried.
    Unavailable,
    Internal,
}

#[derive(Debug)]
pub struct AppError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub detail: String,
    /// Seconds a client should wait before retrying (429, 503).
    pub retry_after: Option<u64>,
    /// Extension members of the problem document (RFC 9457 §3.2), e.g. `taken_seat_ids`.
    pub extensions: Vec<(&'static str, serde_json::Value)>,
    /// For 429 `rate_limited`: the decision, for the `RateLimit` headers.
    pub rate_limit: Option<Box<Limited>>,
    source: Option<anyhow::Error>,
}

impl AppError {
    pub fn new(kind: ErrorKind, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            detail: detail.into(),
            retry_after: None,
            extensions: Vec::new(),
            rate_limit: None,
            source: None,
        }
    }

    /// Adds an extension member to the problem document.
    pub fn with_extension(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.extensions.push((name, value));
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, detail)
    }

    pub fn validation(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, detail)
    }

    /// 404 `concert_not_found`.
    pub fn concert_not_found() -> Self {
        Self::not_found("concert_not_found", "no such concert")
    }

    /// 404 `schedule_not_found`.
    pub fn schedule_not_found() -> Self {
        Self::not_found("schedule_not_found", "no such schedule")
    }

    /// 404 `reservation_not_found` (also for another user's: its existence does not leak).
    pub fn reservation_not_found() -> Self {
        Self::not_found("reservation_not_found", "no such reservation")
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(ErrorKind::Unavailable, code, detail)
        }
    }

    /// An unexpected failure. The client sees an opaque 500; `cause` is logged once.
    pub fn internal(cause: anyhow::Error) -> Self {
        Self {
            source: Some(cause),
            ..Self::new(ErrorKind::Internal, "internal_error", "an internal error occurred")
        }
    }

    pub fn with_source(mut self, cause: anyhow::Error) -> Self {
        self.source = Some(cause);
        self
    }

    pub fn source_chain(&self) -> Option<&anyhow::Error> {
        self.source.as_ref()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " ({source:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

impl From<InvalidField> for AppError {
    fn from(err: InvalidField) -> Self {
        AppError::validation("invalid_field", err.to_string())
    }
}

/// Unexpected errors become 500 — except a database that cannot be reached, which is a 503
/// the client may retry: the operation was not done.
impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        if database_unavailable(&err) {
            AppError::unavailable(
                "database_unavailable",
                "the database is unavailable; try again shortly",
                5,
            )
            .with_source(err)
        } else {
            AppError::internal(err)
        }
    }
}

/// Turns one named constraint violation into a client error; anything else stays an
/// unexpected error. Constraints are named in `migrations/` so code can refer to them.
pub trait OnConstraint<T> {
    fn on_constraint(self, constraint: &str, to_error: impl FnOnce() -> AppError) -> Result<T, AppError>;
}

impl<T> OnConstraint<T> for anyhow::Result<T> {
    fn on_constraint(self, constraint: &str, to_error: impl FnOnce() -> AppError) -> Result<T, AppError> {
        self.map_err(|err| {
            if violated_constraint(&err) == Some(constraint) {
                to_error()
            } else {
                AppError::from(err)
            }
        })
    }
}

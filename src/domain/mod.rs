//! Pure types and rules of the ticketing domain. Imports no sqlx, actix or redis.

pub mod catalog;
pub mod user;

/// A value that failed to parse, with the field it came from and a human reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

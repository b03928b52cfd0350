//! Pure types and rules of the ticketing domain. Imports no sqlx, actix or redis.

pub mod catalog;
pub mod idempotency;
pub mod notice;
pub mod queue;
pub mod rate_limit;
pub mod reservation;
pub mod seat_plan;
pub mod user;
pub mod webhook;

/// A value that failed to parse, with the field it came from and a human reason. Displayed as
/// `field: reason`; a value nested inside `field` is displayed with its own path instead
/// (`sections[0].rows: must be …`), never both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidField {
    /// The request field at fault (for a nested value, the top-level field holding it).
    pub field: &'static str,
    /// Why; for a nested value it starts with the value's full path.
    pub reason: String,
    nested: bool,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
            nested: false,
        }
    }

    /// A value at `path` inside `field` (e.g. `sections[2].price` inside `sections`).
    pub fn nested(field: &'static str, path: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        Self {
            field,
            reason: format!("{path}: {reason}"),
            nested: true,
        }
    }
}

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nested {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_named_once() {
        assert_eq!(
            InvalidField::new("page", "must be from 1 to 1000000").to_string(),
            "page: must be from 1 to 1000000"
        );
        let nested = InvalidField::nested("sections", "sections[0].rows", "must be a positive whole number");
        assert_eq!(nested.field, "sections");
        assert_eq!(nested.to_string(), "sections[0].rows: must be a positive whole number");
    }
}

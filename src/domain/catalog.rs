//! Concerts, schedules and seat layouts.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use super::InvalidField;

pub const MAX_SEATS_PER_REQUEST: u64 = 200_000;
const MAX_TITLE_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 5_000;
const MAX_SECTION_NAME_CHARS: usize = 50;
/// Seat prices, in points; the upper bound matches the largest single charge.
pub const MAX_PRICE: i64 = 10_000_000;
/// How far ahead a performance may be scheduled or a sale may open.
const MAX_YEARS_AHEAD: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcertTitle(String);

impl ConcertTitle {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let title = raw.trim();
        if title.is_empty() {
            return Err(InvalidField::new("title", "must not be empty"));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(InvalidField::new("title", "must be at most 200 characters"));
        }
        if title.chars().any(char::is_control) {
            return Err(InvalidField::new("title", "must not contain control characters"));
        }
        Ok(Self(title.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let text = raw.trim();
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(InvalidField::new("description", "must be at most 5000 characters"));
        }
        // Line breaks and tabs belong in a description; NUL is the one character PostgreSQL
        // text cannot hold (it would fail the insert with a 500).
        if text.contains('\0') {
            return Err(InvalidField::new("description", "must not contain NUL characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When a performance starts: in the future, and at most five years ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartsAt(DateTime<Utc>);

impl StartsAt {
    pub fn parse(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, InvalidField> {
        if at <= now {
            return Err(InvalidField::new("starts_at", "must be in the future"));
        }
        if at > now + Duration::days(365 * MAX_YEARS_AHEAD) {
            return Err(InvalidField::new("starts_at", "must be at most 5 years ahead"));
        }
        Ok(Self(at))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// When a concert's sale opens: at most five years ahead. A time in the past is allowed and
/// means "open now" (an admin re-creating a concert whose sale already started, or a clock
/// a little behind ours, is no mistake worth refusing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleOpensAt(DateTime<Utc>);

impl SaleOpensAt {
    pub fn parse(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, InvalidField> {
        if at > now + Duration::days(365 * MAX_YEARS_AHEAD) {
            return Err(InvalidField::new("sale_opens_at", "must be at most 5 years ahead"));
        }
        Ok(Self(at))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub name: String,
    pub rows: u32,
    pub seats_per_row: u32,
    pub price: i64,
}

/// A validated request to create seats: non-empty, unique section names, positive rows,
/// seats and prices, at most 200,000 seats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeatLayout {
    sections: Vec<Section>,
}

/// One seat position of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatPosition<'a> {
    pub section: &'a str,
    pub row: i32,
    pub number: i32,
    pub price: i64,
}

/// Seats of a layout as columns, one vector per database column: the shape a bulk insert
/// (`UNNEST`) takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatColumns {
    pub sections: Vec<String>,
    pub rows: Vec<i32>,
    pub numbers: Vec<i32>,
    pub prices: Vec<i64>,
}

impl SeatColumns {
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// Raw section input; numbers are wide so that negative or huge values get a clear message.
pub struct RawSection {
    pub name: String,
    pub rows: i64,
    pub seats_per_row: i64,
    pub price: i64,
}

impl SeatLayout {
    pub fn parse(raw: Vec<RawSection>) -> Result<Self, InvalidField> {
        if raw.is_empty() {
            return Err(InvalidField::new("sections", "must contain at least one section"));
        }
        let mut names = HashSet::new();
        let mut total: u64 = 0;
        let mut sections = Vec::with_capacity(raw.len());
        for (i, s) in raw.into_iter().enumerate() {
            let field =
                |what: &str, reason: &str| InvalidField::nested("sections", format!("sections[{i}].{what}"), reason);
            let name = s.name.trim();
            if name.is_empty() || name.chars().count() > MAX_SECTION_NAME_CHARS || name.chars().any(char::is_control) {
                return Err(field("name", "must be 1 to 50 characters without control characters"));
            }
            if !names.insert(name.to_owned()) {
                return Err(field("name", &format!("duplicate section name {name:?}")));
            }
            // Past the seats of a request a count can only be refused; said so, not as a sum.
            let count = |what: &str, n: i64| match u32::try_from(n) {
                Ok(n) if n > 0 && u64::from(n) <= MAX_SEATS_PER_REQUEST => Ok(n),
                _ if n > 0 => Err(field(what, "must be at most 200000")),
                _ => Err(field(what, "must be a positive whole number")),
            };
            let rows = count("rows", s.rows)?;
            let seats = count("seats_per_row", s.seats_per_row)?;
            if !(1..=MAX_PRICE).contains(&s.price) {
                return Err(field("price", "must be from 1 to 10000000 points"));
            }
            total = total.saturating_add(u64::from(rows) * u64::from(seats));
            if total > MAX_SEATS_PER_REQUEST {
                return Err(InvalidField::new(
                    "sections",
                    "a request may create at most 200000 seats",
                ));
            }
            sections.push(Section {
                name: name.to_owned(),
                rows,
                seats_per_row: seats,
                price: s.price,
            });
        }
        Ok(Self { sections })
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub fn total(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| u64::from(s.rows) * u64::from(s.seats_per_row))
            .sum()
    }

    /// Positions `start..end` in a fixed order (sections in request order, then rows, then
    /// seats), so a job can resume from the number of positions it already handled.
    pub fn positions(&self, start: u64, end: u64) -> Vec<SeatPosition<'_>> {
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        let mut offset = 0u64;
        for s in &self.sections {
            let size = u64::from(s.rows) * u64::from(s.seats_per_row);
            let (from, to) = (start.max(offset), end.min(offset + size));
            for index in from..to {
                let local = index - offset;
                let per_row = u64::from(s.seats_per_row);
                out.push(SeatPosition {
                    section: &s.name,
                    row: (local / per_row + 1) as i32,
                    number: (local % per_row + 1) as i32,
                    price: s.price,
                });
            }
            offset += size;
            if offset >= end {
                break;
            }
        }
        out
    }

    /// Positions `start..end` (as [`Self::positions`]) as columns.
    pub fn columns(&self, start: u64, end: u64) -> SeatColumns {
        let positions = self.positions(start, end);
        let mut columns = SeatColumns {
            sections: Vec::with_capacity(positions.len()),
            rows: Vec::with_capacity(positions.len()),
            numbers: Vec::with_capacity(positions.len()),
            prices: Vec::with_capacity(positions.len()),
        };
        for p in positions {
            columns.sections.push(p.section.to_owned());
            columns.rows.push(p.row);
            columns.numbers.push(p.number);
            columns.prices.push(p.price);
        }
        columns
    }
}

/// A 1-based page of at most 100 items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub size: u32,
}

impl PageRequest {
    pub fn parse(page: Option<i64>, size: Option<i64>) -> Result<Self, InvalidField> {
        let page = page.unwrap_or(1);
        let size = size.unwrap_or(20);
        if !(1..=1_000_000).contains(&page) {
            return Err(InvalidField::new("page", "must be from 1 to 1000000"));
        }
        if !(1..=100).contains(&size) {
            return Err(InvalidField::new("size", "must be from 1 to 100"));
        }
        Ok(Self {
            page: page as u32,
            size: size as u32,
        })
    }

    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, rows: i64, seats: i64, price: i64) -> RawSection {
        RawSection {
            name: name.into(),
            rows,
            seats_per_row: seats,
            price,
        }
    }

    #[test]
    fn layouts_validate_and_name_the_field() {
        assert_eq!(SeatLayout::parse(vec![]).unwrap_err().field, "sections");
        let err = SeatLayout::parse(vec![raw("A", 1, 1, 1), raw(" A ", 1, 1, 1)]).unwrap_err();
        assert!(
            err.reason.contains("sections[1].name") && err.reason.contains("duplicate"),
            "{err}"
        );
        assert!(
            SeatLayout::parse(vec![raw("A", 0, 1, 1)])
                .unwrap_err()
                .reason
                .contains("sections[0].rows")
        );
        assert!(
            SeatLayout::parse(vec![raw("A", 1, -3, 1)])
                .unwrap_err()
                .reason
                .contains("seats_per_row")
        );
        assert!(
            SeatLayout::parse(vec![raw("A", 1, 1, 0)])
                .unwrap_err()
                .reason
                .contains("price")
        );
        assert!(
            SeatLayout::parse(vec![raw("A", 1, 1, 1), raw("", 1, 1, 1)])
                .unwrap_err()
                .reason
                .contains("sections[1].name")
        );
        assert!(SeatLayout::parse(vec![raw("A", 1_000_000_000_000, 1, 1)]).is_err());
        assert!(SeatLayout::parse(vec![raw("A", 400, 500, 1)]).is_ok());
        assert!(
            SeatLayout::parse(vec![raw("A", 400, 500, 1), raw("B", 1, 1, 1)])
                .unwrap_err()
                .reason
                .contains("200000")
        );
    }

    #[test]
    fn positions_enumerate_in_a_fixed_order_and_chunk_exactly() {
        let layout = SeatLayout::parse(vec![raw("A", 2, 3, 10), raw("B", 1, 2, 20)]).unwrap();
        assert_eq!(layout.total(), 8);
        let all = layout.positions(0, 8);
        let labels: Vec<String> = all
            .iter()
            .map(|p| format!("{}{}-{}", p.section, p.row, p.number))
            .collect();
        assert_eq!(
            labels,
            vec!["A1-1", "A1-2", "A1-3", "A2-1", "A2-2", "A2-3", "B1-1", "B1-2"]
        );
        let chunked: Vec<_> = [(0, 3), (3, 7), (7, 8)]
            .iter()
            .flat_map(|(a, b)| layout.positions(*a, *b))
            .collect();
        assert_eq!(chunked, all);
        assert_eq!(all[6].price, 20);
    }

    #[test]
    fn columns_hold_the_positions_column_by_column() {
        let layout = SeatLayout::parse(vec![raw("A", 2, 3, 10), raw("B", 1, 2, 20)]).unwrap();
        let columns = layout.columns(4, 8);
        assert_eq!(columns.len(), 4);
        assert_eq!(columns.sections, vec!["A", "A", "B", "B"]);
        assert_eq!(columns.rows, vec![2, 2, 1, 1]);
        assert_eq!(columns.numbers, vec![2, 3, 1, 2]);
        assert_eq!(columns.prices, vec![10, 10, 20, 20]);
        assert!(layout.columns(8, 8).is_empty());
    }

    #[test]
    fn schedules_start_in_the_reasonable_future() {
        let now = Utc::now();
        assert!(StartsAt::parse(now - Duration::hours(1), now).is_err());
        assert!(StartsAt::parse(now + Duration::days(365 * 6), now).is_err());
        assert!(StartsAt::parse(now + Duration::days(30), now).is_ok());
    }

    #[test]
    fn sales_open_at_most_five_years_ahead_and_may_have_opened_already() {
        let now = Utc::now();
        let past = now - Duration::days(3);
        assert_eq!(SaleOpensAt::parse(past, now).unwrap().get(), past);
        assert!(SaleOpensAt::parse(now + Duration::days(30), now).is_ok());
        let err = SaleOpensAt::parse(now + Duration::days(365 * 6), now).unwrap_err();
        assert_eq!(err.field, "sale_opens_at");
    }

    #[test]
    fn titles_and_pages() {
        assert!(ConcertTitle::parse("  ").is_err());
        assert_eq!(ConcertTitle::parse(" Live ").unwrap().as_str(), "Live");
        assert!(Description::parse(&"x".repeat(5001)).is_err());
        assert_eq!(Description::parse("a\0b").unwrap_err().field, "description");
        assert_eq!(Description::parse(" a\n\tb ").unwrap().as_str(), "a\n\tb");
        assert_eq!(
            PageRequest::parse(None, None).unwrap(),
            PageRequest { page: 1, size: 20 }
        );
        assert_eq!(PageRequest::parse(Some(3), Some(10)).unwrap().offset(), 20);
        assert_eq!(PageRequest::parse(Some(0), None).unwrap_err().field, "page");
        assert_eq!(PageRequest::parse(None, Some(101)).unwrap_err().field, "size");
    }

    #[test]
    fn section_errors_name_the_section_field_once() {
        let err = SeatLayout::parse(vec![raw("A", 0, 1, 1)]).unwrap_err();
        assert_eq!(err.field, "sections");
        assert_eq!(err.to_string(), "sections[0].rows: must be a positive whole number");
        assert_eq!(
            SeatLayout::parse(vec![]).unwrap_err().to_string(),
            "sections: must contain at least one section"
        );
    }
}

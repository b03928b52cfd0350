//! A hall's seat plan: seats with a section, row, number and label, a position for drawing,
//! a price category and flags (accessible, companion, for sale). Parsed from JSON or CSV (one
//! row per seat) with every bad seat named, and written back out in the same two shapes.
//! See docs/venues.md.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

mod arena;
mod csv;

pub use arena::{arena, row_label};

use super::InvalidField;
use super::catalog::MAX_PRICE;

/// Seats in one plan at most.
pub const MAX_PLAN_SEATS: usize = 100_000;
pub const MAX_CATEGORIES: usize = 32;
/// Bad seats named in one answer at most (the count says how many there were).
pub const MAX_ERRORS_NAMED: usize = 100;
/// Coordinates are plan units (drawn 1:1 in the picture), from 0 to this.
pub const MAX_COORDINATE: f64 = 100_000.0;
const MAX_SECTION_CHARS: usize = 50;
const MAX_LABEL_CHARS: usize = 10;
const MAX_CATEGORY_CHARS: usize = 32;
/// The CSV columns, in order (the export's header; an import may order them freely).
pub const CSV_COLUMNS: [&str; 10] = [
    "section",
    "row",
    "number",
    "label",
    "x",
    "y",
    "category",
    "accessible",
    "companion",
    "for_sale",
];

/// One seat of a plan as it is imported and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSeat {
    pub section: String,
    /// The row's label ("A", "12").
    pub row: String,
    pub number: i32,
    /// What is printed on the ticket and the seat (defaults to the number).
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub category: String,
    pub accessible: bool,
    /// A place beside a wheelchair place, for a companion.
    pub companion: bool,
    /// False for places never sold (camera positions, the sound desk): drawn, never a seat of
    /// a schedule.
    pub for_sale: bool,
}

/// The JSON shape of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub categories: Vec<String>,
    pub seats: Vec<PlanSeat>,
}

/// A seat as it arrives in JSON: `row` may be a number, `label` and the flags may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeat {
    pub section: String,
    pub row: Label,
    pub number: i64,
    #[serde(default)]
    pub label: Option<Label>,
    pub x: f64,
    pub y: f64,
    pub category: String,
    #[serde(default)]
    pub accessible: bool,
    #[serde(default)]
    pub companion: bool,
    #[serde(default = "yes")]
    pub for_sale: bool,
}

fn yes() -> bool {
    true
}

/// A label written as text or as a whole number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Label {
    Text(String),
    Number(i64),
}

impl Label {
    /// The label as text; a negative number is no label (refused as an empty one).
    fn into_text(self) -> String {
        match self {
            Label::Text(text) => text,
            Label::Number(n) if n >= 0 => n.to_string(),
            Label::Number(_) => String::new(),
        }
    }
}

/// A plan import as it arrives in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub categories: Vec<String>,
    pub seats: Vec<RawSeat>,
}

/// One thing wrong with an import: where (`seats[17]`, `line 19`, `categories`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanError {
    pub at: String,
    pub message: String,
}

/// Everything wrong with an import: the first [`MAX_ERRORS_NAMED`] and how many in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors {
    pub errors: Vec<PlanError>,
    pub total: usize,
}

impl PlanErrors {
    fn one(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            errors: vec![PlanError {
                at: at.into(),
                message: message.into(),
            }],
            total: 1,
        }
    }
}

impl std::fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = &self.errors[0];
        write!(f, "{}: {}", first.at, first.message)?;
        if self.total > 1 {
            write!(f, " (and {} more)", self.total - 1)?;
        }
        Ok(())
    }
}

struct Collector {
    errors: Vec<PlanError>,
    total: usize,
}

impl Collector {
    fn push(&mut self, at: &str, message: impl Into<String>) {
        self.total += 1;
        if self.errors.len() < MAX_ERRORS_NAMED {
            self.errors.push(PlanError {
                at: at.to_owned(),
                message: message.into(),
            });
        }
    }
}

/// A validated plan: at most 100,000 seats, at least one for sale, every seat's place and
/// position unique, every category declared, every companion seat in a row with an accessible
/// place. Seats keep their import order.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatPlan {
    categories: Vec<String>,
    seats: Vec<PlanSeat>,
    /// Each seat's row number: 1-based per section, in the order its rows first appear.
    row_numbers: Vec<i32>,
}

/// Where an import's seats came from, for naming them: JSON array indices or CSV lines.
#[derive(Debug, Clone, Copy)]
enum Source {
    Json,
    /// The first seat is on this line (the header is line 1).
    Csv,
}

impl Source {
    fn at(self, index: usize) -> String {
        match self {
            Source::Json => format!("seats[{index}]"),
            Source::Csv => format!("line {}", index + 2),
        }
    }
}

fn text_ok(text: &str, max: usize) -> bool {
    !text.is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

fn category_ok(name: &str) -> bool {
    (1..=MAX_CATEGORY_CHARS).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.'))
}

impl SeatPlan {
    /// A plan from its JSON shape.
    pub fn from_json(raw: RawPlan) -> Result<Self, PlanErrors> {
        let seats = raw
            .seats
            .into_iter()
            .map(|s| {
                let number = s.number;
                let label = s.label.map(Label::into_text).unwrap_or_else(|| number.to_string());
                (
                    PlanSeat {
                        section: s.section,
                        row: s.row.into_text(),
                        number: i32::try_from(number).unwrap_or(-1),
                        label,
                        x: s.x,
                        y: s.y,
                        category: s.category,
                        accessible: s.accessible,
                        companion: s.companion,
                        for_sale: s.for_sale,
                    },
                    number,
                )
            })
            .collect();
        Self::validate(Some(raw.categories), seats, Vec::new(), Source::Json)
    }

    fn validate(
        categories: Option<Vec<String>>,
        seats: Vec<(PlanSeat, i64)>,
        errors: Vec<PlanError>,
        source: Source,
    ) -> Result<Self, PlanErrors> {
        let indices = (0..seats.len()).collect();
        Self::validate_indexed(categories, seats, indices, errors, source)
    }

    /// The rules, over seats whose import index is `indices[i]`; `earlier` are errors found
    /// while reading (named first).
    fn validate_indexed(
        categories: Option<Vec<String>>,
        seats: Vec<(PlanSeat, i64)>,
        indices: Vec<usize>,
        earlier: Vec<PlanError>,
        source: Source,
    ) -> Result<Self, PlanErrors> {
        let unreadable = earlier.len();
        let mut found = Collector {
            total: earlier.len(),
            errors: earlier.into_iter().take(MAX_ERRORS_NAMED).collect(),
        };
        let categories = categories.unwrap_or_default();
        if categories.is_empty() || categories.len() > MAX_CATEGORIES {
            found.push("categories", format!("must name 1 to {MAX_CATEGORIES} categories"));
        }
        let mut declared = HashSet::new();
        for (i, name) in categories.iter().enumerate() {
            if !category_ok(name) {
                found.push(
                    &format!("categories[{i}]"),
                    "must be 1 to 32 characters of letters, digits, space, _ - .",
                );
            } else if !declared.insert(name.as_str()) {
                found.push(&format!("categories[{i}]"), format!("duplicate category {name:?}"));
            }
        }
        if seats.is_empty() && unreadable == 0 {
            found.push("seats", "a plan needs at least one seat");
        }
        if indices.len() > MAX_PLAN_SEATS {
            found.push("seats", format!("a plan has at most {MAX_PLAN_SEATS} seats"));
            return Err(PlanErrors {
                errors: found.errors,
                total: found.total,
            });
        }
        let mut places: HashMap<(&str, &str, i32), usize> = HashMap::with_capacity(seats.len());
        let mut positions: HashMap<(u64, u64), usize> = HashMap::with_capacity(seats.len());
        let mut accessible_rows: HashSet<(&str, &str)> = HashSet::new();
        for (seat, _) in &seats {
            if seat.accessible {
                accessible_rows.insert((seat.section.as_str(), seat.row.as_str()));
            }
        }
        for ((seat, number), &index) in seats.iter().zip(&indices) {
            let at = source.at(index);
            let mut wrong = Vec::new();
            if !text_ok(&seat.section, MAX_SECTION_CHARS) {
                wrong.push("section: must be 1 to 50 characters without control characters".to_owned());
            }
            if !text_ok(&seat.row, MAX_LABEL_CHARS) {
                wrong.push("row: must be 1 to 10 characters without control characters".to_owned());
            }
            if !(1..=i64::from(i32::MAX)).contains(number) || *number > MAX_PLAN_SEATS as i64 {
                wrong.push(format!("number: must be from 1 to {MAX_PLAN_SEATS}"));
            }
            if !text_ok(&seat.label, MAX_LABEL_CHARS) {
                wrong.push("label: must be 1 to 10 characters without control characters".to_owned());
            }
            let in_range = |v: f64| v.is_finite() && (0.0..=MAX_COORDINATE).contains(&v);
            if !in_range(seat.x) || !in_range(seat.y) {
                wrong.push("x, y: must be from 0 to 100000".to_owned());
            }
            if !declared.contains(seat.category.as_str()) {
                wrong.push(format!("category: {:?} is not a category of the plan", seat.category));
            }
            if seat.accessible && seat.companion {
                wrong.push("a place is accessible or a companion seat, not both".to_owned());
            }
            if seat.companion && !accessible_rows.contains(&(seat.section.as_str(), seat.row.as_str())) {
                wrong.push("companion seat with no accessible place in its row".to_owned());
            }
            if let Some(first) = places.insert((&seat.section, &seat.row, seat.number), index) {
                wrong.push(format!(
                    "duplicate seat {}/{}/{} (also at {})",
                    seat.section,
                    seat.row,
                    seat.number,
                    source.at(first)
                ));
            }
            if in_range(seat.x) && in_range(seat.y) {
                let key = (round(seat.x).to_bits(), round(seat.y).to_bits());
                if let Some(first) = positions.insert(key, index) {
                    wrong.push(format!(
                        "same position ({}, {}) as {}",
                        seat.x,
                        seat.y,
                        source.at(first)
                    ));
                }
            }
            if !wrong.is_empty() {
                found.push(&at, wrong.join("; "));
            }
        }
        if found.total == 0 && !seats.iter().any(|(s, _)| s.for_sale) {
            found.push("seats", "no seat is for sale");
        }
        if found.total > 0 {
            return Err(PlanErrors {
                errors: found.errors,
                total: found.total,
            });
        }
        let mut rows: HashMap<&str, HashMap<&str, i32>> = HashMap::new();
        let mut row_numbers = Vec::with_capacity(seats.len());
        for (seat, _) in &seats {
            let of_section = rows.entry(&seat.section).or_default();
            let next = of_section.len() as i32 + 1;
            row_numbers.push(*of_section.entry(&seat.row).or_insert(next));
        }
        Ok(Self {
            row_numbers,
            seats: seats.into_iter().map(|(s, _)| s).collect(),
            categories,
        })
    }

    /// A plan read back from storage, already validated when it was stored.
    pub fn stored(categories: Vec<String>, seats: Vec<PlanSeat>, row_numbers: Vec<i32>) -> Self {
        Self {
            categories,
            seats,
            row_numbers,
        }
    }

    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    pub fn seats(&self) -> &[PlanSeat] {
        &self.seats
    }

    pub fn row_numbers(&self) -> &[i32] {
        &self.row_numbers
    }

    pub fn for_sale(&self) -> usize {
        self.seats.iter().filter(|s| s.for_sale).count()
    }

    /// Sections in order of first appearance, each with its seat count.
    pub fn sections(&self) -> Vec<(String, usize)> {
        let mut order: Vec<(String, usize)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for seat in &self.seats {
            let i = *index.entry(&seat.section).or_insert_with(|| {
                order.push((seat.section.clone(), 0));
                order.len() - 1
            });
            order[i].1 += 1;
        }
        order
    }

    /// Categories that have a seat for sale: the ones a schedule must price.
    pub fn sold_categories(&self) -> Vec<&str> {
        self.categories
            .iter()
            .filter(|c| self.seats.iter().any(|s| s.for_sale && &s.category == *c))
            .map(String::as_str)
            .collect()
    }

    /// The JSON shape (the export).
    pub fn to_document(&self) -> PlanDocument {
        PlanDocument {
            categories: self.categories.clone(),
            seats: self.seats.clone(),
        }
    }
}

/// Positions are compared at a hundredth of a unit.
fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A schedule's price for each category of its plan that has seats for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices(BTreeMap<String, i64>);

impl Prices {
    /// Every category with seats for sale priced from 1 to 10,000,000 points, and no price for
    /// a category the plan does not have.
    pub fn parse(raw: BTreeMap<String, i64>, plan_categories: &[String], sold: &[&str]) -> Result<Self, InvalidField> {
        for (category, price) in &raw {
            if !plan_categories.contains(category) {
                return Err(InvalidField::nested(
                    "prices",
                    format!("prices.{category}"),
                    "not a category of this plan",
                ));
            }
            if !(1..=MAX_PRICE).contains(price) {
                return Err(InvalidField::nested(
                    "prices",
                    format!("prices.{category}"),
                    "must be from 1 to 10000000 points",
                ));
            }
        }
        let missing: Vec<&str> = sold.iter().copied().filter(|c| !raw.contains_key(*c)).collect();
        if !missing.is_empty() {
            return Err(InvalidField::new(
                "prices",
                format!("no price for the categories {}", missing.join(", ")),
            ));
        }
        Ok(Self(raw))
    }

    pub fn of(&self, category: &str) -> Option<i64> {
        self.0.get(category).copied()
    }

    pub fn as_map(&self) -> &BTreeMap<String, i64> {
        &self.0
    }
}

/// An IANA time zone name as a venue's `time_zone`: `Area/Location` (or `UTC`), letters,
/// digits and `_+-/`. Which zones exist is not checked here (the list changes with tzdata).
pub fn time_zone_ok(name: &str) -> bool {
    name == "UTC"
        || ((3..=64).contains(&name.len())
            && name.contains('/')
            && !name.starts_with('/')
            && !name.ends_with('/')
            && !name.contains("//")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(section: &str, row: &str, number: i64, x: f64, y: f64, category: &str) -> RawSeat {
        RawSeat {
            section: section.into(),
            row: Label::Text(row.into()),
            number,
            label: None,
            x,
            y,
            category: category.into(),
            accessible: false,
            companion: false,
            for_sale: true,
        }
    }

    #[test]
    fn rows_are_numbered_per_section_in_order_of_first_appearance() {
        let plan = SeatPlan::from_json(RawPlan {
            categories: vec!["A".into()],
            seats: vec![
                seat("101", "B", 1, 0.0, 0.0, "A"),
                seat("101", "A", 1, 0.0, 10.0, "A"),
                seat("101", "B", 3, 10.0, 0.0, "A"),
                seat("102", "A", 2, 50.0, 0.0, "A"),
            ],
        })
        .unwrap();
        assert_eq!(plan.row_numbers(), &[1, 2, 1, 1]);
        assert_eq!(plan.seats()[2].label, "3");
        assert_eq!(plan.sections(), vec![("101".to_owned(), 3), ("102".to_owned(), 1)]);
    }

    #[test]
    fn every_bad_seat_is_named_with_what_is_wrong() {
        let mut companion = seat("101", "A", 4, 40.0, 0.0, "A");
        companion.companion = true;
        let err = SeatPlan::from_json(RawPlan {
            categories: vec!["A".into(), "A".into()],
            seats: vec![
                seat("101", "A", 1, 0.0, 0.0, "A"),
                seat("101", "A", 1, 10.0, 0.0, "A"),
                seat("101", "A", 2, 0.0, 0.0, "A"),
                seat("101", "A", 3, 20.0, 0.0, "Z"),
                companion,
                seat("", "A", 5, 50.0, 0.0, "A"),
                seat("101", "A", 0, 60.0, 0.0, "A"),
            ],
        })
        .unwrap_err();
        let named: Vec<(&str, &str)> = err.errors.iter().map(|e| (e.at.as_str(), e.message.as_str())).collect();
        assert_eq!(
            named,
            vec![
                ("categories[1]", "duplicate category \"A\""),
                ("seats[1]", "duplicate seat 101/A/1 (also at seats[0])"),
                ("seats[2]", "same position (0, 0) as seats[0]"),
                ("seats[3]", "category: \"Z\" is not a category of the plan"),
                ("seats[4]", "companion seat with no accessible place in its row"),
                (
                    "seats[5]",
                    "section: must be 1 to 50 characters without control characters"
                ),
                ("seats[6]", "number: must be from 1 to 100000"),
            ]
        );
        assert_eq!(err.total, 7);
    }

    #[test]
    fn csv_lines_are_named_by_their_line_and_round_trip() {
        let body = b"section,row,number,x,y,category,accessible,companion,for_sale\n\
            101,A,1,0,0,Floor,true,,\n\
            101,A,2,10,0,Floor,,true,\n\
            101,A,three,20,0,Floor,,,\n\
            101,A,4,30,0,Floor,,,maybe\n\
            101,A,5,40,0,Floor,,,false\n";
        let err = SeatPlan::from_csv(body, None).unwrap_err();
        assert_eq!(err.total, 2);
        assert_eq!(err.errors[0].at, "line 4");
        assert!(err.errors[0].message.contains("number: \"three\""), "{err:?}");
        assert_eq!(err.errors[1].at, "line 5");
        assert!(err.errors[1].message.contains("for_sale: \"maybe\""), "{err:?}");

        let good = b"section,row,number,x,y,category,accessible,companion,for_sale\n\
            101,A,1,0,0,Floor,true,,\n\
            101,A,2,10,0,Floor,,true,\n\
            101,A,5,40,0,Floor,,,false\n";
        let plan = SeatPlan::from_csv(good, None).unwrap();
        assert_eq!(plan.categories(), &["Floor".to_owned()]);
        assert_eq!(plan.for_sale(), 2);
        let again = SeatPlan::from_csv(&plan.to_csv(), None).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn prices_cover_every_category_for_sale_and_nothing_else() {
        let categories = vec!["A".to_owned(), "B".to_owned(), "Desk".to_owned()];
        let sold = ["A", "B"];
        let map = |pairs: &[(&str, i64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        assert!(Prices::parse(map(&[("A", 100), ("B", 50)]), &categories, &sold).is_ok());
        let missing = Prices::parse(map(&[("A", 100)]), &categories, &sold).unwrap_err();
        assert_eq!(missing.to_string(), "prices: no price for the categories B");
        let unknown = Prices::parse(map(&[("A", 1), ("B", 1), ("C", 1)]), &categories, &sold).unwrap_err();
        assert_eq!(unknown.to_string(), "prices.C: not a category of this plan");
        let zero = Prices::parse(map(&[("A", 0), ("B", 1)]), &categories, &sold).unwrap_err();
        assert_eq!(zero.to_string(), "prices.A: must be from 1 to 10000000 points");
    }

    #[test]
    fn an_arena_keeps_every_rule_and_its_size() {
        let plan = arena(32, 50, 20, 50_000).unwrap();
        assert_eq!(plan.seats().len(), 50_000);
        assert!(plan.seats().iter().any(|s| s.accessible) && plan.seats().iter().any(|s| s.companion));
        assert!(plan.for_sale() < 50_000, "camera platforms are not for sale");
        assert_eq!(row_label(0), "A");
        assert_eq!(row_label(26), "AA");
        let again = SeatPlan::from_csv(&plan.to_csv(), None).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn time_zones_look_like_iana_names() {
        for ok in ["Europe/Berlin", "America/Argentina/Buenos_Aires", "UTC", "Etc/GMT+2"] {
            assert!(time_zone_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "Berlin",
            "/Europe",
            "Europe//Berlin",
            "Europe/Ber lin",
            "Europe/Berlin\n",
        ] {
            assert!(!time_zone_ok(bad), "{bad:?}");
        }
    }
}

//! A plan as CSV: one line a place, under a header naming the columns of [`CSV_COLUMNS`].

use std::collections::HashMap;

use super::{CSV_COLUMNS, MAX_CATEGORIES, MAX_PLAN_SEATS, PlanError, PlanErrors, PlanSeat, SeatPlan, Source};

impl SeatPlan {
    /// A plan from CSV with a header naming the columns of [`CSV_COLUMNS`] (`label`,
    /// `accessible`, `companion` and `for_sale` may be left out). `categories`, if given, are
    /// the plan's categories in order; otherwise those the seats name, in order of first use.
    pub fn from_csv(body: &[u8], categories: Option<Vec<String>>) -> Result<Self, PlanErrors> {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body);
        let header = reader
            .headers()
            .map_err(|e| PlanErrors::one("line 1", format!("unreadable header: {e}")))?
            .clone();
        let mut column: HashMap<&str, usize> = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let Some(known) = CSV_COLUMNS.iter().find(|c| **c == name) else {
                return Err(PlanErrors::one(
                    "line 1",
                    format!("unknown column {name:?}; the columns are {}", CSV_COLUMNS.join(",")),
                ));
            };
            if column.insert(known, i).is_some() {
                return Err(PlanErrors::one("line 1", format!("column {name:?} appears twice")));
            }
        }
        for required in ["section", "row", "number", "x", "y", "category"] {
            if !column.contains_key(required) {
                return Err(PlanErrors::one("line 1", format!("the column {required:?} is missing")));
            }
        }
        let mut errors = Vec::new();
        let mut seats = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let at = Source::Csv.at(index);
            if index >= MAX_PLAN_SEATS {
                return Err(PlanErrors::one(
                    at,
                    format!("a plan has at most {MAX_PLAN_SEATS} seats"),
                ));
            }
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    errors.push(PlanError {
                        at,
                        message: format!("unreadable: {e}"),
                    });
                    seats.push(None);
                    continue;
                }
            };
            let get = |name: &str| column.get(name).and_then(|&i| record.get(i)).unwrap_or("");
            let mut wrong = Vec::new();
            let number = match get("number").parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    wrong.push(format!("number: {:?} is not a whole number", get("number")));
                    0
                }
            };
            let mut coordinate = |name: &str| match get(name).parse::<f64>() {
                Ok(v) => v,
                Err(_) => {
                    wrong.push(format!("{name}: {:?} is not a number", get(name)));
                    0.0
                }
            };
            let (x, y) = (coordinate("x"), coordinate("y"));
            let mut flag = |name: &str, default: bool| match get(name).to_ascii_lowercase().as_str() {
                "" => default,
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                other => {
                    wrong.push(format!("{name}: {other:?} is not true or false"));
                    default
                }
            };
            let (accessible, companion, for_sale) = (
                flag("accessible", false),
                flag("companion", false),
                flag("for_sale", true),
            );
            if !wrong.is_empty() {
                errors.push(PlanError {
                    at,
                    message: wrong.join("; "),
                });
                seats.push(None);
                continue;
            }
            let label = match get("label") {
                "" => number.to_string(),
                label => label.to_owned(),
            };
            seats.push(Some((
                PlanSeat {
                    section: get("section").to_owned(),
                    row: get("row").to_owned(),
                    number: i32::try_from(number).unwrap_or(-1),
                    label,
                    x,
                    y,
                    category: get("category").to_owned(),
                    accessible,
                    companion,
                    for_sale,
                },
                number,
            )));
        }
        let categories = categories.or_else(|| {
            let mut seen = Vec::new();
            for (seat, _) in seats.iter().flatten() {
                if !seen.contains(&seat.category) && seen.len() <= MAX_CATEGORIES {
                    seen.push(seat.category.clone());
                }
            }
            Some(seen)
        });
        // Lines that did not parse are left out; the others keep their line for naming.
        let mut plan_seats = Vec::with_capacity(seats.len());
        let mut indices = Vec::with_capacity(seats.len());
        for (i, seat) in seats.into_iter().enumerate() {
            if let Some(seat) = seat {
                plan_seats.push(seat);
                indices.push(i);
            }
        }
        Self::validate_indexed(categories, plan_seats, indices, errors, Source::Csv)
    }

    /// The CSV shape (the export): a header of [`CSV_COLUMNS`], then one line a seat.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::with_capacity(self.seats.len() * 40));
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(CSV_COLUMNS);
        for s in &self.seats {
            let _ = writer.write_record([
                s.section.as_str(),
                &s.row,
                &s.number.to_string(),
                &s.label,
                &s.x.to_string(),
                &s.y.to_string(),
                &s.category,
                bool_text(s.accessible),
                bool_text(s.companion),
                bool_text(s.for_sale),
            ]);
        }
        writer.into_inner().unwrap_or_default()
    }
}

fn bool_text(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

//! The demo arena's seat plan (`imticket-admin seed`, `plans demo`, the tests).

use super::{PlanErrors, PlanSeat, SeatPlan, Source};

/// A row label: A…Z, then AA, AB, … (the usual way rows are lettered).
pub fn row_label(index: usize) -> String {
    let mut n = index + 1;
    let mut label = Vec::new();
    while n > 0 {
        n -= 1;
        label.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    label.reverse();
    String::from_utf8(label).unwrap_or_default()
}

/// An arena's seat plan, for the demo data and the tests: `sections` blocks around an oval
/// floor with aisles between them, each of `rows` curved rows that get longer outward
/// (`first_row` seats, one more every second row), numbered from 1 left to right. Categories
/// by distance (A the nearest third of the rows, then B, then C); in every block the last
/// row's two end places are wheelchair places with a companion seat beside each; in every
/// eighth block the middle four places of the first row are a camera platform, never sold.
/// At most `limit` places (the last block may end early).
pub fn arena(sections: usize, rows: usize, first_row: usize, limit: usize) -> Result<SeatPlan, PlanErrors> {
    const PITCH: f64 = 10.0;
    const ROW_PITCH: f64 = 12.0;
    let span = std::f64::consts::TAU / sections as f64 * 0.9;
    let inner = first_row as f64 * PITCH / span;
    let centre = inner + rows as f64 * ROW_PITCH + 40.0;
    let mut seats = Vec::new();
    'blocks: for s in 0..sections {
        let start = std::f64::consts::TAU * s as f64 / sections as f64;
        for r in 0..rows {
            let count = first_row + r / 2;
            let radius = inner + r as f64 * ROW_PITCH;
            let category = ["A", "B", "C"][(r * 3 / rows).min(2)];
            for i in 0..count {
                if seats.len() >= limit {
                    break 'blocks;
                }
                let angle = start + span * (i as f64 + 0.5) / count as f64;
                let last_row = r + 1 == rows;
                let end = i == 0 || i + 1 == count;
                let beside_end = i == 1 || i + 2 == count;
                let camera = s % 8 == 0 && r == 0 && count >= 8 && (count / 2 - 2..count / 2 + 2).contains(&i);
                seats.push((
                    PlanSeat {
                        section: format!("{}", 101 + s),
                        row: row_label(r),
                        number: i as i32 + 1,
                        label: (i + 1).to_string(),
                        x: ((centre + radius * angle.cos()) * 10.0).round() / 10.0,
                        y: ((centre + radius * angle.sin()) * 10.0).round() / 10.0,
                        category: category.to_owned(),
                        accessible: last_row && end && count >= 4,
                        companion: last_row && beside_end && count >= 4,
                        for_sale: !camera,
                    },
                    i as i64 + 1,
                ));
            }
        }
    }
    let categories = vec!["A".to_owned(), "B".to_owned(), "C".to_owned()];
    SeatPlan::validate(Some(categories), seats, Vec::new(), Source::Json)
}

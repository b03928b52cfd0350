//! A schedule's seat-map layout (ids, sections, rows, numbers, prices), kept per process and
//! pre-rendered as JSON up to each seat's status; its seat states come from Redis
//! ([`crate::app::catalog::seat_map`]). A layout never changes once the seats exist; seats
//! added to the schedule are noticed by the seat count and the layout is read again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;

use crate::cache::JsonBody;
use crate::infra::postgres::catalog::SeatRow;

/// How long a process keeps a layout before reading it again (it only ever grows, and a
/// grown one is noticed at once by its seat count).
const LAYOUT_KEPT_FOR: Duration = Duration::from_secs(3600);

/// Layouts kept per process at most (a 50,000-seat layout is about 6 MB).
const LAYOUTS_KEPT: usize = 32;

/// A seat's state as one byte of the states string.
pub(crate) const AVAILABLE: u8 = b'a';
pub(crate) const HELD: u8 = b'h';
pub(crate) const SOLD: u8 = b's';

pub(crate) fn state_name(state: u8) -> Option<&'static str> {
    match state {
        AVAILABLE => Some("available"),
        HELD => Some("held"),
        SOLD => Some("sold"),
        _ => None,
    }
}

pub(crate) fn state_byte(name: &str) -> Option<u8> {
    match name {
        "available" => Some(AVAILABLE),
        "held" => Some(HELD),
        "sold" => Some(SOLD),
        _ => None,
    }
}

/// A schedule's seats in seat-map order (section, row, number), each pre-rendered as JSON up
/// to the value of its `status`.
pub struct Layout {
    pub(crate) schedule_id: Uuid,
    pub(crate) offsets: HashMap<Uuid, usize>,
    json: Vec<u8>,
    /// Where each seat's JSON ends in `json`.
    ends: Vec<usize>,
    loaded_at: Instant,
}

impl Layout {
    pub(crate) fn new(schedule_id: Uuid, rows: &[SeatRow]) -> anyhow::Result<Self> {
        let mut json = Vec::with_capacity(rows.len() * 120);
        let mut ends = Vec::with_capacity(rows.len());
        let mut offsets = HashMap::with_capacity(rows.len());
        for (i, seat) in rows.iter().enumerate() {
            json.extend_from_slice(b"{\"id\":\"");
            json.extend_from_slice(seat.id.to_string().as_bytes());
            json.extend_from_slice(b"\",\"section\":");
            serde_json::to_writer(&mut json, &seat.section).context("render section")?;
            json.extend_from_slice(
                format!(
                    ",\"row\":{},\"number\":{},\"price\":{},\"status\":\"",
                    seat.row_number, seat.seat_number, seat.price
                )
                .as_bytes(),
            );
            ends.push(json.len());
            offsets.insert(seat.id, i);
        }
        Ok(Self {
            schedule_id,
            offsets,
            json,
            ends,
            loaded_at: Instant::now(),
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The body of the seat map with `states` (one byte a seat), only seats in `only` if given.
    /// `states` must have one valid byte per seat ([`valid_states`]).
    pub(crate) fn render(&self, states: &[u8], only: Option<u8>) -> JsonBody {
        let mut out = Vec::with_capacity(self.json.len() + states.len() * 12 + 80);
        out.extend_from_slice(b"{\"schedule_id\":\"");
        out.extend_from_slice(self.schedule_id.to_string().as_bytes());
        out.extend_from_slice(b"\",\"seats\":[");
        let mut start = 0;
        let mut first = true;
        for (&end, &state) in self.ends.iter().zip(states) {
            if only.is_none_or(|o| o == state) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&self.json[start..end]);
                out.extend_from_slice(state_name(state).unwrap_or("available").as_bytes());
                out.extend_from_slice(b"\"}");
            }
            start = end;
        }
        out.extend_from_slice(b"]}");
        out.into()
    }
}

/// Whether `states` fits `layout`: one known byte per seat.
pub(crate) fn valid_states(layout: &Layout, states: &[u8]) -> bool {
    states.len() == layout.len() && states.iter().all(|&b| state_name(b).is_some())
}

/// Each process's seat-map layouts, and how often it went to PostgreSQL for a seat map (the tests and
/// the benchmark read these; `seat_map_loads_total{part}` counts the same).
#[derive(Default)]
pub struct SeatLayouts {
    layouts: Mutex<HashMap<Uuid, Arc<Layout>>>,
    /// One load at a time per schedule (single flight): concurrent misses wait for it.
    flights: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    layout_loads: AtomicU64,
    states_loads: AtomicU64,
}

impl SeatLayouts {
    /// (layout loads, states loads) from PostgreSQL by this process so far.
    pub fn loads(&self) -> (u64, u64) {
        (
            self.layout_loads.load(Ordering::Relaxed),
            self.states_loads.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn kept(&self, schedule_id: Uuid) -> Option<Arc<Layout>> {
        let layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        layouts
            .get(&schedule_id)
            .filter(|l| l.loaded_at.elapsed() < LAYOUT_KEPT_FOR)
            .cloned()
    }

    pub(crate) fn keep(&self, layout: Arc<Layout>) {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        if layouts.len() >= LAYOUTS_KEPT && !layouts.contains_key(&layout.schedule_id) {
            let oldest = layouts.values().min_by_key(|l| l.loaded_at).map(|l| l.schedule_id);
            if let Some(oldest) = oldest {
                layouts.remove(&oldest);
            }
        }
        layouts.insert(layout.schedule_id, layout);
    }

    pub(crate) fn forget(&self, schedule_id: Uuid) {
        self.layouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&schedule_id);
    }

    pub(crate) fn flight(&self, schedule_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.len() > 10 * LAYOUTS_KEPT {
            flights.retain(|_, f| Arc::strong_count(f) > 1);
        }
        flights.entry(schedule_id).or_default().clone()
    }

    /// Counts a load of layout and states from PostgreSQL.
    pub(crate) fn counted_layout_load(&self) {
        self.layout_loads.fetch_add(1, Ordering::Relaxed);
        self.states_loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("seat_map_loads_total", "part" => "layout").increment(1);
        metrics::counter!("seat_map_loads_total", "part" => "states").increment(1);
    }

    /// Counts a load of the states alone from PostgreSQL.
    pub(crate) fn counted_states_load(&self) {
        self.states_loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("seat_map_loads_total", "part" => "states").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::catalog::seat_map::{Seat, SeatMap};

    fn row(section: &str, row: i32, number: i32, status: &str) -> SeatRow {
        SeatRow {
            id: Uuid::now_v7(),
            section: section.into(),
            row_number: row,
            seat_number: number,
            price: 100 * i64::from(number),
            status: status.into(),
        }
    }

    #[test]
    fn a_rendered_map_is_the_serialized_one() {
        let schedule = Uuid::now_v7();
        let rows = vec![
            row("A \"front\"", 1, 1, "available"),
            row("A \"front\"", 1, 2, "held"),
            row("Ü", 2, 1, "sold"),
        ];
        let layout = Layout::new(schedule, &rows).unwrap();
        let states: Vec<u8> = rows.iter().map(|r| state_byte(&r.status).unwrap()).collect();
        let expected = |keep: &dyn Fn(&SeatRow) -> bool| {
            serde_json::to_vec(&SeatMap {
                schedule_id: schedule,
                seats: rows
                    .iter()
                    .filter(|r| keep(r))
                    .map(|r| Seat {
                        id: r.id,
                        section: r.section.clone(),
                        row: r.row_number,
                        number: r.seat_number,
                        price: r.price,
                        status: r.status.clone(),
                    })
                    .collect(),
            })
            .unwrap()
        };
        assert_eq!(&*layout.render(&states, None), &expected(&|_| true)[..]);
        assert_eq!(
            &*layout.render(&states, Some(HELD)),
            &expected(&|r| r.status == "held")[..]
        );
        assert_eq!(
            &*layout.render(&states, Some(SOLD)),
            &expected(&|r| r.status == "sold")[..]
        );
        assert_eq!(
            &*Layout::new(schedule, &[]).unwrap().render(&[], None),
            format!("{{\"schedule_id\":\"{schedule}\",\"seats\":[]}}").as_bytes()
        );
    }

    #[test]
    fn states_must_fit_the_layout() {
        let layout = Layout::new(Uuid::now_v7(), &[row("A", 1, 1, "available"), row("A", 1, 2, "held")]).unwrap();
        assert!(valid_states(&layout, b"ah"));
        assert!(!valid_states(&layout, b"a"));
        assert!(!valid_states(&layout, b"ahs"));
        assert!(!valid_states(&layout, b"a\0"));
    }
}

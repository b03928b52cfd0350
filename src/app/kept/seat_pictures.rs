//! Where each schedule's seats are drawn (`GET /schedules/{id}/seats.svg`), kept per process:
//! like the seat map's layout it never changes once the seats exist, and seats added later are
//! noticed by their count ([`crate::app::catalog::seat_picture`]).

use std::sync::Arc;

use uuid::Uuid;

use super::bounded::Kept;

/// Geometries kept per process at most (a 50,000-seat one is about 1.5 MB).
const KEPT: usize = 32;

/// Where one seat or place is drawn, and whether it is a wheelchair place.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub x: f64,
    pub y: f64,
    pub accessible: bool,
}

/// Where a schedule's seats are drawn, in seat-map order, and the plan's places that are
/// never for sale.
pub struct Geometry {
    pub(crate) seats: Vec<Place>,
    pub(crate) never_for_sale: Vec<Place>,
    /// Each category's name, price and seats.
    pub(crate) categories: Vec<(String, i64, usize)>,
}

/// Each process's kept geometries.
pub struct SeatPictures {
    kept: Kept<Uuid, Arc<Geometry>>,
}

impl Default for SeatPictures {
    fn default() -> Self {
        Self { kept: Kept::new(KEPT) }
    }
}

impl SeatPictures {
    pub(crate) fn get(&self, schedule_id: Uuid) -> Option<Arc<Geometry>> {
        self.kept.get(&schedule_id)
    }

    pub(crate) fn keep(&self, schedule_id: Uuid, geometry: Arc<Geometry>) {
        self.kept.insert(schedule_id, geometry);
    }
}

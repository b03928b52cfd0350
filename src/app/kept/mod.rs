//! What each process keeps in memory so the hot paths cost no database query: facts that never
//! change once found. A loser of a hold, a join, a seat-map read each cost no PostgreSQL
//! statement because of these. Each is built once per process by the composition root and
//! shared through [`super::Deps`].
//!
//! | cache | key → value | why it can be kept |
//! |---|---|---|
//! | [`SaleWindows`] | concert → when its sale opens | `sale_opens_at` never changes once created |
//! | [`ScheduleConcerts`] | schedule → its concert | schedules never move |
//! | [`SeatLayouts`] | schedule → its seats' layout | seats are only ever added (noticed by their count) |
//! | [`SeatPictures`] | schedule → where its seats are drawn | as the layout |

mod bounded;
mod sale_windows;
mod schedule_concerts;
pub mod seat_layouts;
mod seat_pictures;

pub use bounded::Kept;
pub use sale_windows::SaleWindows;
pub use schedule_concerts::ScheduleConcerts;
pub use seat_layouts::{Layout, SeatLayouts};
pub use seat_pictures::{Geometry, Place, SeatPictures};

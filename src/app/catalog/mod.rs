//! The catalog's use cases, beside `api/catalog/` and `infra/postgres/catalog.rs`: concerts and
//! their schedules (`concerts`), whether a concert is sold out (`availability`), the seat map
//! (`seat_map`) and its picture (`seat_picture`), bulk seat creation as a job (`seat_creation`), and the cache warm-up at API
//! start (`warm_up`).

pub mod availability;
pub mod concerts;
pub mod seat_creation;
pub mod seat_map;
pub mod seat_picture;
pub mod warm_up;

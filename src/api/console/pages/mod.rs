//! The console's pages and actions, one handler each, a file per page group. A page with a
//! live part renders it alone when the refresh script asks (`X-Console-Live`).

mod audit;
mod dead_letters;
mod parts;
mod rooms;
mod streams;

pub use audit::{action, actions, audit, row};
pub use dead_letters::{dead_letter, dead_letters, purge, purge_confirm, replay, replay_dry_run};
pub use rooms::{pause, resume, rooms, sales};
pub use streams::streams;

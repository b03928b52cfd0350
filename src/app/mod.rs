//! Use cases, named like their API and repository neighbours and grouped by what a user does:
//!
//! | file | what |
//! |---|---|
//! | `auth.rs`, `password.rs`, `tokens.rs` | sign up, log in, the current user; password hashing; access and queue tokens |
//! | `catalog/` | concerts and schedules, the seat map, bulk seat creation, availability, the cache warm-up |
//! | `waiting_room.rs` | join, status, leave, admission (the promoter's round), the booking gate |
//! | `queue_events.rs` | the open `GET /queue/events` streams of a process, and what an event is |
//! | `reservations/` | hold seats (`hold.rs`), read and cancel reservations |
//! | `payments.rs`, `confirmation.rs`, `expiry.rs` | pay a hold; confirm a paid one (worker); expire a due one (worker) |
//! | `notices.rs` | the `notifications` group's work: an event becomes webhook deliveries and mail, as the fan's preferences allow; reminders; the preferences |
//! | `email/` | mail templates (text and HTML) and the mail dispatcher |
//! | `webhooks.rs` | webhook endpoints (admin) and the webhook dispatcher |
//! | `statistics.rs` | sales statistics and settlement: the `statistics` role's counting, the admins' reports |
//! | `venues/` | venues, halls, seat plan versions (import, export, immutability once used) and their pictures |
//! | `wallet.rs`, `idempotency.rs` | points; requests made at most once per `Idempotency-Key` |
//! | `kept/` | what each process keeps in memory (sale windows, schedules' concerts, seat layouts) |
//! | `deps.rs`, `error.rs` | the handles use cases work with ([`Deps`]); the one error type ([`AppError`]) |
//!
//! Each use case owns its transaction and returns [`AppError`] with a stable code. Use cases
//! never see the stream runtime: they write typed events ([`crate::events`]) with
//! [`crate::infra::postgres::outbox::append`] in their transaction and publish them after commit.

pub mod auth;
pub mod catalog;
pub mod confirmation;
pub mod console;
mod deps;
pub mod email;
pub mod error;
pub mod expiry;
pub mod idempotency;
pub mod kept;
pub mod notices;
pub mod password;
pub mod payments;
pub mod queue_events;
pub mod rate_limits;
pub mod reservations;
pub mod statistics;
pub mod tokens;
pub mod venues;
pub mod waiting_room;
pub mod wallet;
pub mod webhooks;

pub use deps::Deps;
pub(crate) use deps::to_json;
pub use error::{AppError, ErrorKind};

//! The event backbone's runtime: Redis Streams consumer groups with reclaim, back-off and a
//! dead-letter stream, safe trimming, and the outbox relay. Used by `workers/` and by
//! `imticket-admin`. It speaks to Redis only through [`crate::infra::redis::streams`]. Use cases
//! never import it: events and their streams are [`crate::events`]'s.
//!
//! | file | what |
//! |---|---|
//! | `subscription.rs` | the description of a consumer: stream, group, handler |
//! | `runtime.rs` | turns subscriptions into running consumers with their housekeeping |
//! | `handler.rs` | the [`Handler`] trait and its [`Outcome`]s |
//! | `consumer.rs` | the loop: read (ahead), handle, ack, shut down in two phases |
//! | `delivery.rs` | an entry between read and ack |
//! | `reclaim.rs` | pending entries whose back-off has passed |
//! | `dead_letter.rs` | the dead-letter stream, for the consumer and for operators |
//! | `groups.rs` | the declared groups created; which entries each still needs, who holds the trim point |
//! | `maintenance.rs` | stream statistics, trimming, dead-consumer removal |
//! | `relay.rs` | the `outbox-relay` role |
//! | `probe.rs` | diagnostic handlers for benchmarks and crash tests |

pub mod consumer;
pub mod dead_letter;
mod delivery;
pub mod groups;
pub mod handler;
pub mod maintenance;
pub mod probe;
pub mod pruning;
mod reclaim;
pub mod relay;
pub mod runtime;
pub mod subscription;

pub use crate::config::ConsumerSettings;
pub use consumer::{BatchReport, Consumer};
pub use handler::{Handler, Outcome};
pub use reclaim::RECLAIM_PAGES_PER_ROUND;
pub use runtime::StreamRuntime;
pub use subscription::Subscription;

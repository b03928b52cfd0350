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
//! | `maintenance.rs` | stream statistics, trimming, dead-consumer removal |
//! | `relay.rs` | the `outbox-relay` role |
//! | `probe.rs` | diagnostic handlers for benchmarks and crash tests |

pub mod consumer;
pub mod dead_letter;
mod delivery;
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

/// A consumer name unique per process: host, pid and a random suffix (a restarted process
/// with a recycled pid must not inherit a dead consumer's pending entries by name).
pub fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_unique() {
        assert_ne!(consumer_name(), consumer_name());
        assert!(consumer_name().contains(&std::process::id().to_string()));
    }
}

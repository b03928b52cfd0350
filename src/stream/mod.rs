//! The event backbone's runtime: Redis Streams consumer groups with reclaim, back-off and a
//! dead-letter stream, safe trimming, and the outbox relay. Used by `workers/` and by
//! `imticket-admin`; besides `infra` and `cache`, the only code that talks to Redis. Use cases
//! never import it: events and their streams are [`crate::events`]'s.
//!
//! | file | what |
//! |---|---|
//! | `subscription.rs` | the description of a consumer: stream, group, handler |
//! | `runtime.rs` | turns subscriptions into running consumers with their housekeeping |
//! | `handler.rs` | the [`Handler`] trait and its [`Outcome`]s |
//! | `settings.rs` | batch size, concurrency, back-off, delivery limit |
//! | `consumer.rs` | the loop: read (ahead), handle, ack, shut down in two phases |
//! | `delivery.rs` | an entry between read and ack |
//! | `reclaim.rs` | pending entries whose back-off has passed |
//! | `dead_letter.rs` | the dead-letter stream, for the consumer and for operators |
//! | `group.rs` | consumer-group creation and loss |
//! | `maintenance.rs` | stream statistics, trimming, dead-consumer removal |
//! | `relay.rs` | the `outbox-relay` role |
//! | `probe.rs` | diagnostic handlers for benchmarks and crash tests |
//! | `resp.rs` | hand parsing of stream replies |

pub mod consumer;
pub mod dead_letter;
mod delivery;
pub mod group;
pub mod handler;
pub mod maintenance;
pub mod probe;
pub mod pruning;
mod reclaim;
pub mod relay;
mod resp;
pub mod runtime;
pub mod settings;
pub mod subscription;

use std::fmt;

pub use consumer::{BatchReport, Consumer};
pub use handler::{Handler, Outcome};
pub use reclaim::RECLAIM_PAGES_PER_ROUND;
pub use runtime::StreamRuntime;
pub use settings::ConsumerSettings;
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

/// An XADD/XRANGE entry id (`<ms>-<seq>`), for ordering and age computations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub fn parse(raw: &str) -> Option<Self> {
        let (ms, seq) = raw.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The smallest id greater than this one.
    pub fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms + 1,
                seq: 0,
            },
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_order_and_step() {
        let a = EntryId::parse("1700000000000-5").unwrap();
        assert_eq!(a.next().to_string(), "1700000000000-6");
        assert!(a < a.next());
        assert_eq!(EntryId { ms: 1, seq: u64::MAX }.next(), EntryId { ms: 2, seq: 0 });
        assert!(EntryId::parse("nope").is_none());
    }

    #[test]
    fn consumer_names_are_unique() {
        assert_ne!(consumer_name(), consumer_name());
        assert!(consumer_name().contains(&std::process::id().to_string()));
    }
}

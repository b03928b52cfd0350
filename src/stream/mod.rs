//! The event backbone's runtime: Redis Streams consumer groups with reclaim, back-off and a
//! dead-letter stream, safe trimming, and the outbox relay. Used by `workers/` and by
//! `imticket-admin`; the only module besides `infra` that talks to Redis.
//!
//! Names (documented in the README; never change them silently):
//!
//! | stream (key, after the `IMTICKET_REDIS_KEY_PREFIX`) | consumer group |
//! |---|---|
//! | `stream:seat-creation` | `seat-creation` |
//! | `stream:payments` | `payment` |
//! | `stream:expiry` | `expiry` |
//! | `stream:dead-letter` | (none: read by operators with `imticket-admin dlq`) |

pub mod consumer;
pub mod dead_letter;
pub mod envelope;
pub mod maintenance;
pub mod probe;
pub mod pruning;
pub mod relay;

use std::fmt;

pub use consumer::{Consumer, ConsumerSettings, Handler, Outcome};
pub use envelope::Envelope;

/// The event families, one stream each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    SeatCreation,
    Payments,
    Expiry,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::SeatCreation, Stream::Payments, Stream::Expiry];

    /// The logical name, stored in outbox rows and used in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Stream::SeatCreation => "seat-creation",
            Stream::Payments => "payments",
            Stream::Expiry => "expiry",
        }
    }

    /// The consumer group of the worker role that handles this stream.
    pub fn group(self) -> &'static str {
        match self {
            Stream::SeatCreation => "seat-creation",
            Stream::Payments => "payment",
            Stream::Expiry => "expiry",
        }
    }

    pub fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Redis key names under the deployment's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// Key of a stream given its logical name (`payments` → `imticket:stream:payments`).
    pub fn stream_named(&self, name: &str) -> String {
        format!("{}stream:{name}", self.prefix)
    }

    pub fn stream(&self, stream: Stream) -> String {
        self.stream_named(stream.name())
    }

    pub fn dead_letter(&self) -> String {
        self.stream_named("dead-letter")
    }

    /// The logical name of a stream key of this deployment, if it is one.
    pub fn logical_name<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix("stream:")
    }
}

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
    fn keys_and_names() {
        let keys = Keys::new("imticket:");
        assert_eq!(keys.stream(Stream::Payments), "imticket:stream:payments");
        assert_eq!(keys.dead_letter(), "imticket:stream:dead-letter");
        assert_eq!(keys.logical_name("imticket:stream:payments"), Some("payments"));
        assert_eq!(keys.logical_name("other:stream:payments"), None);
        for stream in Stream::ALL {
            assert_eq!(Stream::from_name(stream.name()), Some(stream));
        }
    }

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

//! The Redis Streams protocol's special ids, named, and the entry id type. Nothing else in the
//! code writes `*`, `>`, `-`, `+` or `0` as a stream id.

use std::fmt;

/// `XADD key * …`: Redis picks the new entry's id (its clock in ms, then a sequence).
pub const NEW_ENTRY: &str = "*";
/// `XREADGROUP … STREAMS key >`: only entries never delivered to any consumer of the group.
pub const UNDELIVERED: &str = ">";
/// `XGROUP CREATE key group 0`: the group starts before the first entry, so entries added
/// before any worker ever ran are delivered too.
pub const BEFORE_FIRST: &str = "0";
/// The lowest id of a range (`XRANGE key - …`, `XPENDING … - …`).
pub const LOWEST: &str = "-";
/// The highest id of a range (`XRANGE key … +`).
pub const HIGHEST: &str = "+";

/// An exclusive range start: the entries after `id` (`(id`, Redis 6.2 and later).
pub fn after(id: &str) -> String {
    format!("({id}")
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
        assert_eq!(after("1-2"), "(1-2");
    }
}

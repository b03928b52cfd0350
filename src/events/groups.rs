//! The consumer groups: who reads each stream. One stream carries a family of events; every
//! purpose that reads it is a consumer group of its own, with its own cursor, pending list
//! and dead letters, so a slow or failing reader never holds up the others (docs/architecture.md,
//! "Fan-out groups").
//!
//! | stream | group | role | pinning |
//! |---|---|---|---|
//! | `seat-creation` | `seat-creation` | `seat-creation` | always |
//! | `payments` | `payment` | `payment` | always |
//! | `payments` | `settlement` | `statistics` | always |
//! | `expiry` | `expiry` | `expiry` | always |
//! | `expiry` | `statistics` | `statistics` | always |
//! | `expiry` | `notifications` | `notifications` | until abandoned |
//! | `reservations` | `statistics` | `statistics` | always |
//! | `reservations` | `notifications` | `notifications` | until abandoned |
//! | `queue` | `statistics` | `statistics` | always |
//! | `queue` | `notifications` | `notifications` | until abandoned |
//!
//! Every declared group is created when a process starts and again by each stream's
//! maintenance, before anything is trimmed: a group exists from the first event on, even
//! before its first worker runs. Trimming never removes an entry a pinning group has not acked.

use super::Stream;

/// How long a group holds the stream's trim point for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Every entry waits for this group, however long its workers are away: the booking's own
    /// work and the numbers that must equal the ledger.
    Always,
    /// Entries wait for this group while it has a consumer, and for
    /// `IMTICKET_STREAM_GROUP_ABANDON_AFTER_SECONDS` after its last one was seen; after that
    /// the group stops holding the trim point (a notice hours late is worth less than a Redis
    /// that runs out of memory). Its consumers resume from where they were; entries trimmed
    /// meanwhile are gone for it.
    UntilAbandoned,
    /// Declared retired (`IMTICKET_STREAM_GROUPS_RETIRED`): never created, never holds the
    /// trim point; an existing group of this name is left for the operator to destroy.
    Retired,
}

impl Pinning {
    pub fn name(self) -> &'static str {
        match self {
            Pinning::Always => "always",
            Pinning::UntilAbandoned => "until-abandoned",
            Pinning::Retired => "retired",
        }
    }
}

/// One reader of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub stream: Stream,
    pub name: &'static str,
    pub pinning: Pinning,
}

const fn group(stream: Stream, name: &'static str, pinning: Pinning) -> Group {
    Group { stream, name, pinning }
}

/// Every group of every stream, as the table above.
pub const GROUPS: &[Group] = &[
    group(Stream::SeatCreation, "seat-creation", Pinning::Always),
    group(Stream::Payments, "payment", Pinning::Always),
    group(Stream::Payments, "settlement", Pinning::Always),
    group(Stream::Expiry, "expiry", Pinning::Always),
    group(Stream::Expiry, "statistics", Pinning::Always),
    group(Stream::Expiry, "notifications", Pinning::UntilAbandoned),
    group(Stream::Reservations, "statistics", Pinning::Always),
    group(Stream::Reservations, "notifications", Pinning::UntilAbandoned),
    group(Stream::Queue, "statistics", Pinning::Always),
    group(Stream::Queue, "notifications", Pinning::UntilAbandoned),
];

/// The declared groups of `stream`.
pub fn groups_of(stream: Stream) -> impl Iterator<Item = &'static Group> {
    GROUPS.iter().filter(move |g| g.stream == stream)
}

/// The registry as a deployment runs it: the declared groups, with those retired by
/// configuration marked so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// `stream:group` or `group` (every stream) names declared retired.
    retired: Vec<String>,
}

impl Registry {
    /// `retired`: names from `IMTICKET_STREAM_GROUPS_RETIRED`, each `group` (on every stream)
    /// or `stream:group`.
    pub fn new(retired: Vec<String>) -> Self {
        Self { retired }
    }

    /// Whether a name of `IMTICKET_STREAM_GROUPS_RETIRED` names a declared group.
    pub fn names_a_group(name: &str) -> bool {
        match name.split_once(':') {
            Some((stream, group)) => GROUPS.iter().any(|g| g.stream.name() == stream && g.name == group),
            None => GROUPS.iter().any(|g| g.name == name),
        }
    }

    fn is_retired(&self, stream: Stream, group: &str) -> bool {
        self.retired.iter().any(|r| match r.split_once(':') {
            Some((s, g)) => s == stream.name() && g == group,
            None => r == group,
        })
    }

    /// How `group` of `stream` pins the trim point here. A group on the stream that nobody
    /// declared (an operator's `XGROUP CREATE` from `redis-cli`) pins until abandoned.
    pub fn pinning(&self, stream: Stream, group: &str) -> Pinning {
        if self.is_retired(stream, group) {
            return Pinning::Retired;
        }
        groups_of(stream)
            .find(|g| g.name == group)
            .map_or(Pinning::UntilAbandoned, |g| g.pinning)
    }

    /// The groups of `stream` that this deployment creates (declared and not retired).
    pub fn live_groups(&self, stream: Stream) -> impl Iterator<Item = &'static str> + '_ {
        groups_of(stream)
            .filter(move |g| !self.is_retired(stream, g.name))
            .map(|g| g.name)
    }

    /// The (stream, group) pairs that must each process every event of their stream: the
    /// groups that pin always. After Redis lost writes, an event is published again unless
    /// every one of them has recorded it.
    pub fn required(&self) -> Vec<(Stream, &'static str)> {
        GROUPS
            .iter()
            .filter(|g| self.pinning(g.stream, g.name) == Pinning::Always)
            .map(|g| (g.stream, g.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_has_its_work_group_first_and_names_are_unique() {
        for stream in Stream::ALL {
            let names: Vec<_> = groups_of(stream).map(|g| g.name).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "{stream}: a group declared twice");
            assert!(!names.is_empty(), "{stream} has no group");
        }
        assert_eq!(groups_of(Stream::Payments).next().unwrap().name, "payment");
    }

    #[test]
    fn retired_groups_pin_nothing_and_unknown_groups_pin_until_abandoned() {
        let registry = Registry::new(vec!["notifications".into(), "payments:settlement".into()]);
        assert_eq!(registry.pinning(Stream::Expiry, "notifications"), Pinning::Retired);
        assert_eq!(registry.pinning(Stream::Payments, "settlement"), Pinning::Retired);
        assert_eq!(registry.pinning(Stream::Expiry, "statistics"), Pinning::Always);
        assert_eq!(registry.pinning(Stream::Payments, "adhoc"), Pinning::UntilAbandoned);
        assert!(!registry.live_groups(Stream::Queue).any(|g| g == "notifications"));
        assert!(!registry.required().contains(&(Stream::Payments, "settlement")));
        assert!(registry.required().contains(&(Stream::Payments, "payment")));
        assert!(Registry::names_a_group("payments:settlement"));
        assert!(Registry::names_a_group("notifications"));
        assert!(!Registry::names_a_group("payments:nope"));
    }
}

//! Every Redis key name ImTicket uses, under the deployment's `IMTICKET_REDIS_KEY_PREFIX`.
//! Nothing else builds a key: a feature that needs Redis adds its names here, so an operator
//! (and `redis-cli`) can find them all in one table.
//!
//! | key (after the prefix) | type | what |
//! |---|---|---|
//! | `stream:<name>` | stream | an event stream ([`crate::events::Stream`]) |
//! | `stream:dead-letter` | stream | entries that failed for good, read by operators |
//! | `groups:seen` | hash | `<stream key>\|<group>` → when a consumer of the group last ran its stream's maintenance (ms): an abandoned group stops pinning the trim point |
//! | `cache:{<entry>}` | string | a cached JSON body ([`CacheEntry`] names the entries) |
//! | `cache:gen:{<entry>}` | string | the entry's generation counter (see [`crate::cache`]) |
//! | `cache:invalidations` | pub/sub channel | cache entries just invalidated |
//! | `queue:open` | set | concert ids with a waiting room (the promoter's work list) |
//! | `queue:{c<id>}:waiting` | sorted set | entry id → place in line (pre-queue: random in [0, 1); after the opening: sequence ≥ 1) |
//! | `queue:{c<id>}:active` | sorted set | entry id → end of its active slot (ms) |
//! | `queue:{c<id>}:entries` | hash | entry id → `<user id>:<joined at ms>` |
//! | `queue:{c<id>}:users` | hash | user id → entry id (joining is idempotent) |
//! | `queue:{c<id>}:seq` | string | the line's sequence counter |
//! | `queue:{c<id>}:budget` | hash | admissions spent in the current second (`sec`, `used`) |
//! | `queue:{c<id>}:admitted` | sorted set | entry id → admission time (ms), the last minute |
//! | `queue:{c<id>}:meta` | hash | `opens_at` (ms, 0: open), `sold_out` (0/1) |
//! | `queue:{c<id>}:done` | sorted set | entry id → when a payment released its slot (ms), kept one active TTL |
//! | `hold:{s<schedule id>}:<seat id>` | string (PX) | a seat's hold gate: the holding reservation's id |
//! | `seat-states:{s<schedule id>}` | string | one byte a seat in seat-map order (`a`, `h`, `s`), written through, rebuilt after `IMTICKET_SEAT_STATES_TTL_SECONDS` |
//! | `ratelimit:<policy>:<key>` | string (PX) | a rate-limit key's theoretical arrival time (ms); `<key>` is an IP, a user id or a hashed e-mail |
//! | `expiry:due` | sorted set | held reservation id → its `expires_at` (ms), for the expiry scheduler |
//!
//! Every key of one concert's waiting room shares the hash tag `{c<id>}`, so each multi-key
//! Lua script touches one Redis Cluster slot.
//!
//! The prefix is built once at start-up (the composition root, [`crate::root`]) and cloned
//! from there.

use uuid::Uuid;

use crate::events::Stream;

/// The Redis Cluster slot of `key` (CRC16 of the key, or of its hash tag: the part between
/// the first `{` and the next `}`, if not empty), as the Cluster computes it.
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    /// The hash tag of each partition of the partitioned streams (empty: one partition).
    partition_tags: Vec<String>,
}

/// The number of slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The hash tag of partition `i` of `partitions`: the first `<i>.<n>` whose slot lies in the
/// `i`-th of `partitions` equal parts of the slot range. `redis-cli --cluster create` gives
/// each of M masters one of M equal parts, so with P = M (or a multiple) the partitions land
/// on different masters.
fn partition_tag(i: u16, partitions: u16) -> String {
    let part = |slot: u16| (u32::from(slot) * u32::from(partitions) / u32::from(SLOTS)) as u16;
    (0u32..)
        .map(|n| format!("{i}.{n}"))
        .find(|tag| part(slot(tag)) == i)
        .unwrap_or_default()
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            partition_tags: Vec::new(),
        }
    }

    /// The payments and expiry streams (and the due holds) split into `partitions`, each in a
    /// slot of its own (`IMTICKET_STREAM_PARTITIONS`; 1 = no split, the plain names).
    pub fn with_partitions(mut self, partitions: u16) -> Self {
        self.partition_tags = if partitions > 1 {
            (0..partitions).map(|i| partition_tag(i, partitions)).collect()
        } else {
            Vec::new()
        };
        self
    }

    /// How many partitions `stream` has.
    pub fn partitions(&self, stream: Stream) -> u16 {
        if stream.is_partitioned() {
            self.partition_tags.len().max(1) as u16
        } else {
            1
        }
    }

    /// Which partition `subject` (a reservation id) belongs to: its random low bits modulo the
    /// partitions, the same in every process.
    pub fn partition_of(&self, stream: Stream, subject: Uuid) -> u16 {
        (subject.as_u128() as u64 % u64::from(self.partitions(stream))) as u16
    }

    /// The key of partition `i` of `stream`: `stream:<name>` when it has one,
    /// `stream:<name>.<i>{<tag>}` when split.
    pub fn stream_partition(&self, stream: Stream, i: u16) -> String {
        match self
            .partition_tags
            .get(usize::from(i))
            .filter(|_| stream.is_partitioned())
        {
            Some(tag) => format!("{}stream:{}.{i}{{{tag}}}", self.prefix, stream.name()),
            None => self.stream(stream),
        }
    }

    /// Every key of `stream`, partition 0 first.
    pub fn stream_keys(&self, stream: Stream) -> Vec<String> {
        (0..self.partitions(stream))
            .map(|i| self.stream_partition(stream, i))
            .collect()
    }

    /// The key of the partition of `stream` that `subject` is published to.
    pub fn stream_for(&self, stream: Stream, subject: Uuid) -> String {
        self.stream_partition(stream, self.partition_of(stream, subject))
    }

    /// The logical stream of a key of this deployment (any partition), if it is one.
    pub fn stream_of(&self, key: &str) -> Option<Stream> {
        let name = self.logical_name(key)?;
        let name = name.split_once('{').map_or(name, |(name, _)| name);
        let name = name.rsplit_once('.').map_or(name, |(name, _)| name);
        Stream::from_name(name)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Key of a stream given its logical name (`payments` → `imticket:stream:payments`).
    pub fn stream_named(&self, name: &str) -> String {
        format!("{}stream:{name}", self.prefix)
    }

    /// The key of `stream` with one partition (every stream by default; with
    /// `IMTICKET_STREAM_PARTITIONS` the payments and expiry streams have [`Self::stream_keys`]).
    pub fn stream(&self, stream: Stream) -> String {
        self.stream_named(stream.name())
    }

    pub fn dead_letter(&self) -> String {
        self.stream_named("dead-letter")
    }

    /// When each consumer group was last seen running ([`crate::events::groups`]).
    pub fn groups_seen(&self) -> String {
        format!("{}groups:seen", self.prefix)
    }

    /// The logical name of a stream key of this deployment, if it is one.
    pub fn logical_name<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix("stream:")
    }

    /// Key of a cached body. The entry's name is its hash tag, shared with its generation
    /// (one script reads both); different entries spread over a Cluster's slots.
    pub fn cache(&self, entry: &str) -> String {
        format!("{}cache:{{{entry}}}", self.prefix)
    }

    /// Key of a cache entry's generation: a counter that every invalidation increments.
    pub fn cache_generation(&self, entry: &str) -> String {
        format!("{}cache:gen:{{{entry}}}", self.prefix)
    }

    /// Pub/sub channel of cache invalidations: each message is a JSON array of entry names.
    pub fn cache_invalidations(&self) -> String {
        format!("{}cache:invalidations", self.prefix)
    }
}

impl Keys {
    /// The set of concerts that have a waiting room.
    pub fn queue_open(&self) -> String {
        format!("{}queue:open", self.prefix)
    }

    /// The keys of one concert's waiting room, all in one Cluster slot.
    pub fn queue(&self, concert_id: Uuid) -> QueueKeys {
        let base = format!("{}queue:{{c{concert_id}}}:", self.prefix);
        let key = |name: &str| format!("{base}{name}");
        QueueKeys {
            waiting: key("waiting"),
            active: key("active"),
            entries: key("entries"),
            users: key("users"),
            seq: key("seq"),
            budget: key("budget"),
            admitted: key("admitted"),
            meta: key("meta"),
            done: key("done"),
        }
    }
}

impl Keys {
    /// Held reservations by due time (the `expiry-scheduler`'s work list): partition 0 of
    /// [`Self::expiry_due_keys`].
    pub fn expiry_due(&self) -> String {
        self.expiry_due_partition(0)
    }

    /// Partition `i` of the due holds: in the slot of the expiry stream's partition `i`.
    pub fn expiry_due_partition(&self, i: u16) -> String {
        match self.partition_tags.get(usize::from(i)) {
            Some(tag) => format!("{}expiry:due.{i}{{{tag}}}", self.prefix),
            None => format!("{}expiry:due", self.prefix),
        }
    }

    /// Every partition of the due holds.
    pub fn expiry_due_keys(&self) -> Vec<String> {
        (0..self.partitions(Stream::Expiry))
            .map(|i| self.expiry_due_partition(i))
            .collect()
    }

    /// The due-holds partition of a reservation (that of its `hold.expired` event).
    pub fn expiry_due_for(&self, reservation: Uuid) -> String {
        self.expiry_due_partition(self.partition_of(Stream::Expiry, reservation))
    }

    /// The Redis gate of a seat (a fast-fail hint before PostgreSQL, never the arbiter). The
    /// seats of one schedule share a hash tag, so one script can take several at once.
    pub fn seat_gate(&self, schedule_id: Uuid, seat_id: Uuid) -> String {
        format!("{}hold:{{s{schedule_id}}}:{seat_id}", self.prefix)
    }

    /// A rate-limit key of `policy` (`subject`: an IP, a user id, a hashed e-mail address).
    /// One key a script, so no hash tag: the keys spread over the Cluster's slots.
    pub fn rate_limit(&self, policy: &str, subject: &str) -> String {
        format!("{}ratelimit:{policy}:{subject}", self.prefix)
    }

    /// The states of a schedule's seats, one byte a seat in seat-map order (`a` available,
    /// `h` held, `s` sold), written through by every hold, release and sale; rebuilt from
    /// PostgreSQL when missing (it lives `IMTICKET_SEAT_STATES_TTL_SECONDS`). Shares the
    /// schedule's hash tag with its seat gates.
    pub fn seat_states(&self, schedule_id: Uuid) -> String {
        format!("{}seat-states:{{s{schedule_id}}}", self.prefix)
    }
}

/// One concert's waiting-room keys (see the table at the top of this file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    pub waiting: String,
    pub active: String,
    pub entries: String,
    pub users: String,
    pub seq: String,
    pub budget: String,
    pub admitted: String,
    pub meta: String,
    pub done: String,
}

impl QueueKeys {
    /// In the order every waiting-room script declares its `KEYS`.
    pub fn all(&self) -> [&str; 9] {
        [
            &self.waiting,
            &self.active,
            &self.entries,
            &self.users,
            &self.seq,
            &self.budget,
            &self.admitted,
            &self.meta,
            &self.done,
        ]
    }
}

/// Names of the cached entries (the part after `cache:`), one function per kind.
pub struct CacheEntry;

impl CacheEntry {
    /// `GET /concerts/{id}`.
    pub fn concert(id: Uuid) -> String {
        format!("concert:{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_spread_over_the_slot_range_and_keep_the_plain_names_unsplit() {
        let one = Keys::new("imticket:");
        assert_eq!(one.stream_keys(Stream::Payments), vec!["imticket:stream:payments"]);
        assert_eq!(one.expiry_due_keys(), vec!["imticket:expiry:due"]);
        let three = Keys::new("imticket:").with_partitions(3);
        let payments = three.stream_keys(Stream::Payments);
        assert_eq!(payments.len(), 3);
        assert!(payments[1].starts_with("imticket:stream:payments.1{1."), "{payments:?}");
        for (i, key) in payments.iter().enumerate() {
            assert_eq!(
                u32::from(slot(key)) * 3 / u32::from(SLOTS),
                i as u32,
                "{key} in part {i}"
            );
            assert_eq!(three.stream_of(key), Some(Stream::Payments));
            assert_eq!(slot(key), slot(&three.stream_partition(Stream::Expiry, i as u16)));
            assert_eq!(slot(key), slot(&three.expiry_due_partition(i as u16)));
        }
        assert_eq!(
            three.stream_keys(Stream::SeatCreation),
            vec!["imticket:stream:seat-creation"]
        );
        assert_eq!(
            three.stream_of("imticket:stream:seat-creation"),
            Some(Stream::SeatCreation)
        );
        assert_eq!(three.stream_of("imticket:stream:dead-letter"), None);
        let reservation = Uuid::now_v7();
        assert_eq!(
            three
                .stream_for(Stream::Expiry, reservation)
                .split_once('{')
                .map(|(_, t)| t.to_owned()),
            three
                .expiry_due_for(reservation)
                .split_once('{')
                .map(|(_, t)| t.to_owned()),
            "a reservation's due hold and its expiry event share a slot"
        );
        let spread: std::collections::HashSet<u16> = (0..300)
            .map(|_| three.partition_of(Stream::Payments, Uuid::now_v7()))
            .collect();
        assert_eq!(spread.len(), 3);
    }

    #[test]
    fn slots_are_the_clusters() {
        // Values from `redis-cli CLUSTER KEYSLOT`.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("bar"), 5061);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(
            slot("foo{}{bar}"),
            slot("foo{}{bar}"),
            "an empty tag hashes the whole key"
        );
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    }

    #[test]
    fn keys_and_names() {
        let keys = Keys::new("imticket:");
        assert_eq!(keys.stream(Stream::Payments), "imticket:stream:payments");
        assert_eq!(keys.dead_letter(), "imticket:stream:dead-letter");
        assert_eq!(keys.logical_name("imticket:stream:payments"), Some("payments"));
        assert_eq!(keys.logical_name("other:stream:payments"), None);
        assert_eq!(keys.cache("concert:x"), "imticket:cache:{concert:x}");
        assert_eq!(keys.cache_generation("concert:x"), "imticket:cache:gen:{concert:x}");
        assert_eq!(
            slot(&keys.cache("concert:x")),
            slot(&keys.cache_generation("concert:x"))
        );
        assert_eq!(keys.cache_invalidations(), "imticket:cache:invalidations");
        let id = Uuid::nil();
        let queue = keys.queue(id);
        assert_eq!(queue.waiting, format!("imticket:queue:{{c{id}}}:waiting"));
        assert!(queue.all().iter().all(|k| k.contains(&format!("{{c{id}}}"))));
        assert_eq!(keys.queue_open(), "imticket:queue:open");
        assert_eq!(keys.seat_states(id), format!("imticket:seat-states:{{s{id}}}"));
        assert_eq!(
            keys.seat_gate(id, id)
                .split_once('{')
                .map(|(_, tag)| tag.split_once('}').unwrap().0),
            Some(format!("s{id}").as_str()),
            "a schedule's states and gates share its hash tag"
        );
    }
}

//! Every Redis key name ImTicket uses, under the deployment's `IMTICKET_REDIS_KEY_PREFIX`.
//! Nothing else builds a key: a feature that needs Redis adds its names here, so an operator
//! (and `redis-cli`) can find them all in one table.
//!
//! | key (after the prefix) | type | what |
//! |---|---|---|
//! | `stream:<name>` | stream | an event stream ([`crate::events::Stream`]) |
//! | `stream:dead-letter` | stream | entries that failed for good, read by operators |
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
    const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    let bytes = key.as_bytes();
    let hashed = match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    CRC16.checksum(hashed) % 16384
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
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
    /// Held reservations by due time (the `expiry-scheduler`'s work list).
    pub fn expiry_due(&self) -> String {
        format!("{}expiry:due", self.prefix)
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
    fn slots_are_the_clusters() {
        // Values from `redis-cli CLUSTER KEYSLOT`.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("bar"), 5061);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}"), "an empty tag hashes the whole key");
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
        assert_eq!(slot(&keys.cache("concert:x")), slot(&keys.cache_generation("concert:x")));
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

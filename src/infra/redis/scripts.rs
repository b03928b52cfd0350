//! Every Lua script ImTicket runs, each in its own file under `lua/`, compiled in with
//! `include_str!` and sent by SHA (`EVALSHA`, loaded on first use). The waiting-room and seat
//! scripts touch the keys of one hash tag only (one Cluster slot: a concert's `{c<id>}`, a
//! schedule's `{s<id>}`); the cache's two keys of an entry do not share a tag yet. A script
//! reads the time from Redis (`TIME`), never from its caller.

use std::sync::LazyLock;

use redis::Script;

/// The waiting-room helpers every queue script starts with (keys, clock, view, budget).
const QUEUE_PRELUDE: &str = include_str!("lua/queue_prelude.lua");

fn queue_script(body: &str) -> Script {
    Script::new(&format!("{QUEUE_PRELUDE}\n{body}"))
}

/// Joins a concert's line (or its pre-queue); idempotent per user.
pub static QUEUE_JOIN: LazyLock<Script> = LazyLock::new(|| queue_script(include_str!("lua/queue_join.lua")));
/// Where an entry stands.
pub static QUEUE_STATUS: LazyLock<Script> = LazyLock::new(|| queue_script(include_str!("lua/queue_status.lua")));
/// Leaves the line or gives an active slot back.
pub static QUEUE_LEAVE: LazyLock<Script> = LazyLock::new(|| queue_script(include_str!("lua/queue_leave.lua")));
/// Ends a user's active slot after their payment (the entry then reads `done`).
pub static QUEUE_RELEASE: LazyLock<Script> = LazyLock::new(|| queue_script(include_str!("lua/queue_release.lua")));
/// One admission round of the promoter.
pub static QUEUE_ADMIT: LazyLock<Script> = LazyLock::new(|| queue_script(include_str!("lua/queue_admit.lua")));

/// Takes the gates of a hold's seats, all or none.
pub static SEAT_GATES_TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/seat_gates_take.lua")));
/// Gives a hold's gates back.
pub static SEAT_GATES_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/seat_gates_release.lua")));
/// Writes changed seat states into a schedule's states string.
pub static SEAT_STATES_WRITE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/seat_states_write.lua")));
/// Stores a cached value unless it was invalidated since it was read.
pub static CACHE_SET_IF_GENERATION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/cache_set_if_generation.lua")));
/// One rate-limit decision (GCRA) on Redis's clock.
pub static RATE_LIMIT_GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/rate_limit_gcra.lua")));
/// Removes a group's idle consumers that own no pending entry.
pub static STREAM_REMOVE_IDLE_CONSUMERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/stream_remove_idle_consumers.lua")));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_script_starts_with_the_prelude_and_names_its_keys() {
        for script in [&QUEUE_JOIN, &QUEUE_STATUS, &QUEUE_LEAVE, &QUEUE_RELEASE, &QUEUE_ADMIT] {
            assert_eq!(script.get_hash().len(), 40);
        }
        assert!(QUEUE_PRELUDE.contains("local done = KEYS[9]"));
        let hashes: std::collections::HashSet<&str> = [&QUEUE_JOIN, &QUEUE_STATUS, &QUEUE_LEAVE]
            .iter()
            .map(|s| s.get_hash())
            .collect();
        assert_eq!(hashes.len(), 3, "distinct scripts");
    }
}

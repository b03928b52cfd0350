//! The near cache: copies of hot entries kept inside each API process, in front of Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::entry::JsonBody;

/// Entries kept in the process for at most `ttl`, used only while the process follows the
/// invalidation channel ([`super::follow_invalidations`]).
///
/// A copy is never stored if an invalidation arrived after the request that loaded it began
/// (the epoch check), so a request racing with a change cannot put back what the change
/// removed.
pub struct NearCache {
    ttl: Duration,
    capacity: usize,
    live: AtomicBool,
    state: Mutex<NearState>,
}

#[derive(Default)]
struct NearState {
    entries: HashMap<String, (JsonBody, Instant)>,
    /// Incremented by every eviction.
    epoch: u64,
}

impl NearCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            live: AtomicBool::new(false),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NearState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether invalidations are being received; while not, nothing is served or stored.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
        self.clear();
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    pub(super) fn epoch(&self) -> u64 {
        self.state().epoch
    }

    pub(super) fn get(&self, key: &str) -> Option<JsonBody> {
        if !self.is_live() {
            return None;
        }
        let state = self.state();
        let (body, expires) = state.entries.get(key)?;
        (Instant::now() < *expires).then(|| body.clone())
    }

    /// Stores `body` unless something was evicted since `epoch` was read.
    pub(super) fn insert(&self, key: &str, body: &JsonBody, epoch: u64) {
        if !self.is_live() {
            return;
        }
        let mut state = self.state();
        if state.epoch != epoch {
            return;
        }
        if state.entries.len() >= self.capacity {
            let now = Instant::now();
            state.entries.retain(|_, (_, expires)| *expires > now);
            if state.entries.len() >= self.capacity {
                return;
            }
        }
        state
            .entries
            .insert(key.to_owned(), (body.clone(), Instant::now() + self.ttl));
    }

    pub fn evict(&self, keys: &[String]) {
        let mut state = self.state();
        state.epoch += 1;
        for key in keys {
            state.entries.remove(key);
        }
    }

    pub fn clear(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> JsonBody {
        text.as_bytes().into()
    }

    #[test]
    fn near_copies_are_served_only_while_live_and_until_their_ttl() {
        let near = NearCache::new(Duration::from_millis(50), 10);
        near.insert("k", &body("1"), near.epoch());
        assert!(near.get("k").is_none(), "not live: nothing stored");
        near.set_live(true);
        near.insert("k", &body("1"), near.epoch());
        assert_eq!(near.get("k").as_deref(), Some(&b"1"[..]));
        std::thread::sleep(Duration::from_millis(60));
        assert!(near.get("k").is_none(), "expired");
        near.insert("k", &body("2"), near.epoch());
        near.set_live(false);
        assert!(near.get("k").is_none() && near.is_empty(), "going down clears");
    }

    #[test]
    fn a_full_near_cache_drops_expired_copies_and_never_grows_past_capacity() {
        let near = NearCache::new(Duration::from_millis(20), 2);
        near.set_live(true);
        near.insert("a", &body("1"), near.epoch());
        near.insert("b", &body("1"), near.epoch());
        near.insert("c", &body("1"), near.epoch());
        assert_eq!(near.len(), 2);
        std::thread::sleep(Duration::from_millis(30));
        near.insert("c", &body("1"), near.epoch());
        assert_eq!((near.len(), near.get("c").is_some()), (1, true));
    }

    #[test]
    fn a_copy_loaded_before_an_eviction_is_not_stored() {
        let near = NearCache::new(Duration::from_secs(60), 10);
        near.set_live(true);
        let epoch = near.epoch();
        near.evict(&["other".to_owned()]);
        near.insert("k", &body("stale"), epoch);
        assert!(near.get("k").is_none());
        near.insert("k", &body("fresh"), near.epoch());
        near.evict(&["k".to_owned()]);
        assert!(near.get("k").is_none());
    }
}

//! The map behind the kept facts.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// A bounded map of facts found once: when full it is emptied (cheap, and the next misses
/// refill it with what is in use now).
pub struct Kept<K, V> {
    known: Mutex<HashMap<K, V>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            known: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    pub fn insert(&self, key: K, value: V) {
        let mut known = self.lock();
        if known.len() >= self.capacity {
            known.clear();
        }
        known.insert(key, value);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_starts_over() {
        let kept = Kept::new(2);
        kept.insert(1, "a");
        kept.insert(2, "b");
        assert_eq!((kept.get(&1), kept.get(&2)), (Some("a"), Some("b")));
        kept.insert(3, "c");
        assert_eq!((kept.get(&1), kept.get(&3)), (None, Some("c")));
    }
}

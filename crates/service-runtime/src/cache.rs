//! A short-lived, size-bounded cache of shared database state, for the reads
//! a hot path repeats.
//!
//! Every replica caches the same shared database state and serves an entry
//! for at most its TTL, so nothing that only one replica knows decides
//! anything, and staleness is bounded. A process drops an entry the moment it
//! changes the underlying data itself ([`TtlCache::invalidate`]).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries by key, each served for at most the TTL after it was stored.
pub struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// A cache serving entries for `ttl`, emptied whenever it would grow
    /// past `max_entries` (simple, and a full reload costs one read per key).
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            entries: Mutex::default(),
        }
    }

    /// The entry for `key`, if it was stored less than the TTL ago.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// Stores `value` for `key`, fresh from now.
    pub fn insert(&self, key: impl Into<String>, value: V) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(key.into(), (Instant::now(), value));
    }

    /// Forgets `key` (its data just changed).
    pub fn invalidate(&self, key: &str) {
        self.entries.lock().expect("cache lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_an_entry_for_the_ttl_and_forgets_it_on_invalidation() {
        let cache = TtlCache::new(Duration::from_millis(50), 10);
        assert_eq!(cache.get("a"), None);
        cache.insert("a", 1);
        assert_eq!(cache.get("a"), Some(1));
        cache.invalidate("a");
        assert_eq!(cache.get("a"), None);
        cache.insert("a", 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None, "expired");
    }

    #[test]
    fn never_holds_more_than_its_bound() {
        let cache = TtlCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.insert(i.to_string(), i);
        }
        assert!(cache.entries.lock().unwrap().len() <= 3);
        assert_eq!(cache.get("9"), Some(9), "the newest entry is kept");
    }
}

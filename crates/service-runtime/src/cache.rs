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

    /// Up to `limit` keys stored more than `age` ago (expired, or about to
    /// be): what one read can refresh together, so that a hot path reads
    /// the database once for many keys instead of once per key and TTL.
    pub fn older_than(&self, age: Duration, limit: usize) -> Vec<String> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .iter()
            .filter(|(_, (at, _))| at.elapsed() >= age)
            .map(|(key, _)| key.clone())
            .take(limit)
            .collect()
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
    fn names_the_keys_stored_longer_ago_than_an_age() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        cache.insert("old", 1);
        std::thread::sleep(Duration::from_millis(30));
        cache.insert("new", 2);
        assert_eq!(cache.older_than(Duration::from_millis(20), 10), vec!["old"]);
        assert_eq!(
            cache.older_than(Duration::ZERO, 1).len(),
            1,
            "at most the limit"
        );
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

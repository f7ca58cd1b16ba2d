//! A short-lived cache of catalog entries for booking creation.
//!
//! Creating a booking reads its property from the catalog: one of only two
//! database round trips on the hottest path. The catalog is itself an
//! eventually consistent copy of owner-service's data (it lags by the Kafka
//! hop), so serving an entry up to [`TTL`] old widens that window by at most
//! a second. Every replica caches the same shared database state; nothing
//! only one replica knows decides anything. Browsing (`GET /properties`)
//! always reads the database, and the catalog consumer drops an entry the
//! moment it applies a change to it, so within one process a booking is
//! priced from what the catalog shows, except for a request that read the
//! database in the instant before the change (still bounded by [`TTL`]).
//!
//! Entries are read back together: a miss reads its own listing and every
//! other one stored more than half the TTL ago, in one query, and misses
//! that come meanwhile wait for that read instead of making their own. So a
//! busy process reads the catalog about once a second whatever the number of
//! properties booked (it was one read per property and second: 64 a second,
//! 0.14 database commands per booking at 450 bookings/s, docs/benchmarks.md).

use std::{sync::Arc, time::Duration};

use events::PropertyId;
use service_runtime::{cache::TtlCache, store::StoreError};

use crate::{domain::catalog::CatalogProperty, store::TravelerStore};

/// How long an entry (or its absence) is served without reading the database.
pub const TTL: Duration = Duration::from_secs(1);

/// Entries kept at most; the cache is emptied when it grows past this.
const MAX_ENTRIES: usize = 10_000;

/// Most listings one read refreshes.
const REFRESH_BATCH: usize = 500;

/// The cache, shared by all requests of one process. Absence is cached too.
pub struct ListingCache {
    entries: TtlCache<Option<CatalogProperty>>,
    /// Held while one read refreshes entries; a miss meanwhile waits for it
    /// and looks again before reading itself.
    refreshing: tokio::sync::Mutex<()>,
}

impl Default for ListingCache {
    fn default() -> Self {
        Self {
            entries: TtlCache::new(TTL, MAX_ENTRIES),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }
}

impl ListingCache {
    /// Forgets `id` (its listing just changed in the database).
    pub fn invalidate(&self, id: &PropertyId) {
        self.entries.invalidate(id.as_str());
    }

    /// The listing `id`, from the cache if fresh, else from `store`.
    pub async fn get(
        &self,
        store: &Arc<dyn TravelerStore>,
        id: &PropertyId,
    ) -> Result<Option<CatalogProperty>, StoreError> {
        if let Some(entry) = self.entries.get(id.as_str()) {
            return Ok(entry);
        }
        let _refresh = self.refreshing.lock().await;
        if let Some(entry) = self.entries.get(id.as_str()) {
            return Ok(entry);
        }
        let mut ids: Vec<PropertyId> = self
            .entries
            .older_than(TTL / 2, REFRESH_BATCH - 1)
            .into_iter()
            .map(PropertyId::from)
            .collect();
        ids.retain(|other| other != id);
        ids.push(id.clone());
        let mut found: std::collections::HashMap<PropertyId, CatalogProperty> = store
            .listings(&ids)
            .await?
            .into_iter()
            .map(|listing| (listing.id.clone(), listing))
            .collect();
        // Absence is cached too.
        for other in ids.iter().filter(|other| *other != id) {
            self.entries.insert(other.as_str(), found.remove(other));
        }
        let wanted = found.remove(id);
        self.entries.insert(id.as_str(), wanted.clone());
        Ok(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InMemoryTravelerStore;
    use service_runtime::outbox::{InMemoryOutbox, OutboxSignal};

    fn listing(version: u64, active: bool) -> CatalogProperty {
        CatalogProperty {
            id: "p".into(),
            owner_id: "o".into(),
            details: test_support::store::property_details("Flat"),
            active,
            version,
            updated_at: events::timestamp::now(),
        }
    }

    /// An empty store of this process, as the cache's callers hold it.
    fn memory_store() -> Arc<dyn TravelerStore> {
        Arc::new(InMemoryTravelerStore::new(Arc::new(InMemoryOutbox::new(
            OutboxSignal::default(),
        ))))
    }

    /// What `cache` answers for the listing `id` (the store read must not fail).
    async fn cached(
        cache: &ListingCache,
        store: &Arc<dyn TravelerStore>,
        id: &str,
    ) -> Option<CatalogProperty> {
        cache.get(store, &id.into()).await.unwrap()
    }

    #[tokio::test]
    async fn one_read_refreshes_every_entry_past_half_its_ttl() {
        let store = memory_store();
        let other = |version| CatalogProperty {
            id: "q".into(),
            ..listing(version, true)
        };
        store.upsert_listing(&listing(1, true)).await.unwrap();
        store.upsert_listing(&other(1)).await.unwrap();
        let cache = ListingCache::default();
        assert_eq!(
            cached(&cache, &store, "q").await.map(|p| p.version),
            Some(1)
        );
        tokio::time::sleep(TTL / 2 + Duration::from_millis(50)).await;
        store.upsert_listing(&other(2)).await.unwrap();
        // A miss on "p" reads "q" again too, half a TTL old.
        assert_eq!(
            cached(&cache, &store, "p").await.map(|p| p.version),
            Some(1)
        );
        assert_eq!(
            cache.entries.get("q").flatten().map(|p| p.version),
            Some(2),
            "refreshed by the other entry's read"
        );
    }

    #[tokio::test]
    async fn serves_an_entry_for_at_most_the_ttl() {
        let store = memory_store();
        let cache = ListingCache::default();
        assert_eq!(
            cached(&cache, &store, "p").await,
            None,
            "absence is cached too"
        );
        store.upsert_listing(&listing(1, true)).await.unwrap();
        assert_eq!(cached(&cache, &store, "p").await, None, "within the TTL");
        tokio::time::sleep(TTL + Duration::from_millis(50)).await;
        assert_eq!(
            cached(&cache, &store, "p").await.map(|p| p.version),
            Some(1)
        );
        store
            .delist_listing(&"p".into(), 2, events::timestamp::now())
            .await
            .unwrap();
        tokio::time::sleep(TTL + Duration::from_millis(50)).await;
        assert_eq!(
            cached(&cache, &store, "p").await.map(|p| p.active),
            Some(false)
        );

        // A change applied in this process is seen at once.
        store.upsert_listing(&listing(3, true)).await.unwrap();
        cache.invalidate(&"p".into());
        assert_eq!(
            cached(&cache, &store, "p").await.map(|p| p.version),
            Some(3)
        );
    }
}

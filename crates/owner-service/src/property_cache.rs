//! Properties named by booking requests, cached for a second.
//!
//! Applying a batch of booking requests reads their properties to check that
//! each exists and belongs to the owner the request names, and to word the
//! owner's notification. At a steady stream of requests for a few properties
//! that read repeats every batch. A property's owner never changes and a
//! property is never deleted (delisting keeps it), so only its name can be
//! stale, by at most [`TTL`] across replicas and not at all in the process
//! that changed it (which invalidates the entry). Only properties that exist
//! are cached: a request for an unknown one always reads the database before
//! it is dead-lettered.

use std::{collections::HashMap, time::Duration};

use events::PropertyId;
use service_runtime::{cache::TtlCache, store::StoreError};

use crate::{domain::property::Property, store::OwnerStore};

/// How long a property is served without reading the database.
pub const TTL: Duration = Duration::from_secs(1);

/// Properties kept at most; the cache is emptied when it grows past this.
const MAX_ENTRIES: usize = 10_000;

/// The cache, shared by the consumer and the property endpoints of one process.
pub struct PropertyCache {
    entries: TtlCache<Property>,
}

impl Default for PropertyCache {
    fn default() -> Self {
        Self {
            entries: TtlCache::new(TTL, MAX_ENTRIES),
        }
    }
}

impl PropertyCache {
    /// The properties with these ids that exist, by id: fresh entries from
    /// the cache, the rest from `store` in one round trip.
    pub async fn get_many(
        &self,
        store: &dyn OwnerStore,
        ids: &[PropertyId],
    ) -> Result<HashMap<PropertyId, Property>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.entries.get(id.as_str()) {
                Some(p) => {
                    found.insert(id.clone(), p);
                }
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            for p in store.properties_by_ids(&missing).await? {
                self.entries.insert(p.id.to_string(), p.clone());
                found.insert(p.id.clone(), p);
            }
        }
        Ok(found)
    }

    /// Forgets `id` (this process just changed it).
    pub fn invalidate(&self, id: &PropertyId) {
        self.entries.invalidate(id.as_str());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use events::{Envelope, PropertyEvent};
    use service_runtime::outbox::{InMemoryOutbox, OutboxMessage, OutboxSignal};

    use super::*;
    use crate::store::InMemoryOwnerStore;

    fn property(id: &str, name: &str, version: u64) -> Property {
        let now = events::timestamp::now();
        Property {
            id: id.into(),
            owner_id: "o".into(),
            details: test_support::store::property_details(name),
            active: true,
            version,
            created_at: now,
            updated_at: now,
        }
    }

    fn event(p: &Property) -> OutboxMessage {
        OutboxMessage::new(
            "t",
            &Envelope::new("test", PropertyEvent::Upserted(p.snapshot())),
        )
    }

    fn names(found: &HashMap<PropertyId, Property>) -> Vec<(String, String)> {
        let mut v: Vec<_> = found
            .values()
            .map(|p| (p.id.to_string(), p.details.name.clone()))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn serves_existing_properties_and_never_caches_an_unknown_one() {
        let store = InMemoryOwnerStore::new(Arc::new(InMemoryOutbox::new(OutboxSignal::default())));
        let cache = PropertyCache::default();
        let a = property("a", "Old name", 1);
        store.insert_property(&a, event(&a)).await.unwrap();
        let ids: [PropertyId; 2] = ["a".into(), "b".into()];
        let found = cache.get_many(&store, &ids).await.unwrap();
        assert_eq!(names(&found), [("a".into(), "Old name".into())]);

        // `b` appears: found at once, its absence was not cached.
        let b = property("b", "B", 1);
        store.insert_property(&b, event(&b)).await.unwrap();
        // `a` renamed elsewhere: the cached entry is served within the TTL...
        let renamed = property("a", "New name", 2);
        assert!(store
            .update_property(&renamed, 1, event(&renamed))
            .await
            .unwrap());
        let found = cache.get_many(&store, &ids).await.unwrap();
        assert_eq!(
            names(&found),
            [("a".into(), "Old name".into()), ("b".into(), "B".into())]
        );
        // ...and not after this process says it changed.
        cache.invalidate(&"a".into());
        let found = cache.get_many(&store, &ids).await.unwrap();
        assert_eq!(
            names(&found),
            [("a".into(), "New name".into()), ("b".into(), "B".into())]
        );
    }
}

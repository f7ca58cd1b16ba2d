use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{BookingId, BookingStatus, BookingStatusChanged, PropertyId, UserId};
use service_runtime::{
    outbox::{InMemoryOutbox, OutboxMessage},
    paging::{Page, PageRequest},
    store::{self, StateWithOutbox, StoreError},
};

use super::{
    booking_key, listing_key, CancelOutcome, CreateOutcome, IdempotencyKey, StatusApplied,
    TravelerStore, BOOKINGS_LIST, CATALOG_LIST,
};
use crate::domain::{
    booking::Booking,
    catalog::{CatalogProperty, CatalogQuery},
};

/// traveler-service state in process memory (embedded mode, fast tests).
/// One lock covers state and outbox, so each change and its event are one step.
pub struct InMemoryTravelerStore {
    state: StateWithOutbox<State>,
}

#[derive(Default)]
struct State {
    catalog: HashMap<PropertyId, CatalogProperty>,
    bookings: HashMap<BookingId, Booking>,
    /// scoped idempotency key → (booking id, request fingerprint)
    keys: HashMap<String, (BookingId, String)>,
}

impl InMemoryTravelerStore {
    pub fn new(outbox: Arc<InMemoryOutbox>) -> Self {
        Self {
            state: StateWithOutbox::new(outbox),
        }
    }
}

#[async_trait]
impl TravelerStore for InMemoryTravelerStore {
    async fn upsert_listing(&self, p: &CatalogProperty) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if state
            .catalog
            .get(&p.id)
            .is_none_or(|c| c.version < p.version)
        {
            state.catalog.insert(p.id.clone(), p.clone());
        }
        Ok(())
    }

    async fn delist_listing(
        &self,
        id: &PropertyId,
        version: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if let Some(p) = state.catalog.get_mut(id).filter(|p| p.version < version) {
            p.active = false;
            p.version = version;
            p.updated_at = at;
        }
        Ok(())
    }

    async fn listing(&self, id: &PropertyId) -> Result<Option<CatalogProperty>, StoreError> {
        Ok(self.state.lock().await.catalog.get(id).cloned())
    }

    async fn listings(&self, ids: &[PropertyId]) -> Result<Vec<CatalogProperty>, StoreError> {
        Ok(store::values_by_ids(&self.state.lock().await.catalog, ids))
    }

    async fn search_listings(
        &self,
        q: &CatalogQuery,
        page: &PageRequest,
    ) -> Result<Page<CatalogProperty>, StoreError> {
        Ok(store::page_of_matching(
            &self.state.lock().await.catalog,
            |p| q.matches(p),
            page,
            CATALOG_LIST,
            listing_key,
        ))
    }

    async fn create_booking(
        &self,
        b: &Booking,
        key: Option<&IdempotencyKey>,
        event: OutboxMessage,
    ) -> Result<CreateOutcome, StoreError> {
        let mut state = self.state.lock().await;
        // The key first: a retry carries the id the first attempt created.
        if let Some((booking_id, fingerprint)) = key.and_then(|k| state.keys.get(&k.scoped_key)) {
            let key = key.expect("found by key");
            return Ok(key.replay_outcome(state.bookings[booking_id].clone(), fingerprint));
        }
        if state.bookings.contains_key(&b.id) {
            return Err(StoreError::Duplicate("booking".into()));
        }
        if let Some(key) = key {
            state.keys.insert(
                key.scoped_key.clone(),
                (b.id.clone(), key.fingerprint.clone()),
            );
        }
        state.bookings.insert(b.id.clone(), b.clone());
        self.state.queue(event);
        Ok(CreateOutcome::Created)
    }

    async fn booking_by_idempotency_key(
        &self,
        scoped_key: &str,
    ) -> Result<Option<(Booking, String)>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .keys
            .get(scoped_key)
            .map(|(id, fingerprint)| (state.bookings[id].clone(), fingerprint.clone())))
    }

    async fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError> {
        Ok(self.state.lock().await.bookings.get(id).cloned())
    }

    async fn bookings_of(
        &self,
        traveler_id: &UserId,
        status: Option<BookingStatus>,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        Ok(store::page_of_matching(
            &self.state.lock().await.bookings,
            |b| &b.traveler_id == traveler_id && status.is_none_or(|s| b.status == s),
            page,
            BOOKINGS_LIST,
            booking_key,
        ))
    }

    async fn request_cancellation(
        &self,
        id: &BookingId,
        traveler_id: &UserId,
        at: DateTime<Utc>,
        event: OutboxMessage,
    ) -> Result<CancelOutcome, StoreError> {
        let mut state = self.state.lock().await;
        let Some(b) = state
            .bookings
            .get_mut(id)
            .filter(|b| &b.traveler_id == traveler_id)
        else {
            return Ok(CancelOutcome::NotFound);
        };
        if b.status.is_final() {
            return Ok(CancelOutcome::Final(b.clone()));
        }
        if b.cancellation_requested_at.is_some() {
            return Ok(CancelOutcome::AlreadyRequested(b.clone()));
        }
        b.cancellation_requested_at = Some(at);
        b.updated_at = at;
        self.state.queue(event);
        Ok(CancelOutcome::Requested(b.clone()))
    }

    async fn apply_status(
        &self,
        change: &BookingStatusChanged,
    ) -> Result<StatusApplied, StoreError> {
        let mut state = self.state.lock().await;
        let Some(b) = state.bookings.get_mut(&change.booking_id) else {
            return Ok(StatusApplied::UnknownBooking);
        };
        if b.version >= change.version {
            return Ok(StatusApplied::Stale);
        }
        b.status = change.status;
        b.status_reason = change.reason.clone();
        b.version = change.version;
        b.updated_at = change.changed_at;
        Ok(StatusApplied::Applied)
    }

    async fn apply_statuses(&self, changes: &[BookingStatusChanged]) -> Result<(), StoreError> {
        for change in changes {
            self.apply_status(change).await?;
        }
        Ok(())
    }

    async fn bookings_by_ids(&self, ids: &[BookingId]) -> Result<Vec<Booking>, StoreError> {
        Ok(store::values_by_ids(&self.state.lock().await.bookings, ids))
    }
}

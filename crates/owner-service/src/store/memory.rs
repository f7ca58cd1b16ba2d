use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use events::{BookingCancellationRequested, BookingId, BookingStatus, EventId, PropertyId, UserId};
use service_runtime::{
    outbox::{InMemoryOutbox, OutboxMessage},
    paging::{Page, PageRequest},
    store::{self, StateWithOutbox, StoreError},
};

use super::{
    booking_key, property_key, BookingFilter, OwnerStore, SaveDecisionError, BOOKINGS_LIST,
    PROPERTIES_LIST,
};
use crate::domain::{booking::Booking, property::Property};

/// owner-service state in process memory (embedded mode, fast tests). One
/// lock covers state and outbox, so each change and its event are one step.
pub struct InMemoryOwnerStore {
    state: StateWithOutbox<State>,
}

#[derive(Default)]
struct State {
    properties: HashMap<PropertyId, Property>,
    bookings: HashMap<BookingId, Booking>,
    /// Parked cancellations with their event ids.
    parked: Vec<(EventId, BookingCancellationRequested)>,
}

impl InMemoryOwnerStore {
    pub fn new(outbox: Arc<InMemoryOutbox>) -> Self {
        Self {
            state: StateWithOutbox::new(outbox),
        }
    }
}

#[async_trait]
impl OwnerStore for InMemoryOwnerStore {
    async fn insert_property(&self, p: &Property, event: OutboxMessage) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if state.properties.contains_key(&p.id) {
            return Err(StoreError::Duplicate("property".into()));
        }
        state.properties.insert(p.id.clone(), p.clone());
        self.state.queue(event);
        Ok(())
    }

    async fn update_property(
        &self,
        p: &Property,
        expected_version: u64,
        event: OutboxMessage,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        match state.properties.get_mut(&p.id) {
            Some(current) if current.version == expected_version => {
                *current = p.clone();
                self.state.queue(event);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn property(&self, id: &PropertyId) -> Result<Option<Property>, StoreError> {
        Ok(self.state.lock().await.properties.get(id).cloned())
    }

    async fn properties_of(
        &self,
        owner_id: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Property>, StoreError> {
        Ok(store::page_of_matching(
            &self.state.lock().await.properties,
            |p| &p.owner_id == owner_id,
            page,
            PROPERTIES_LIST,
            property_key,
        ))
    }

    async fn properties_by_ids(&self, ids: &[PropertyId]) -> Result<Vec<Property>, StoreError> {
        Ok(store::values_by_ids(
            &self.state.lock().await.properties,
            ids,
        ))
    }

    async fn insert_bookings(&self, bs: &[Booking]) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        for b in bs {
            state
                .bookings
                .entry(b.id.clone())
                .or_insert_with(|| b.clone());
        }
        Ok(())
    }

    async fn insert_booking(&self, b: &Booking) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        if state.bookings.contains_key(&b.id) {
            return Ok(false);
        }
        state.bookings.insert(b.id.clone(), b.clone());
        Ok(true)
    }

    async fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError> {
        Ok(self.state.lock().await.bookings.get(id).cloned())
    }

    async fn bookings_of(
        &self,
        owner_id: &UserId,
        filter: &BookingFilter,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        Ok(store::page_of_matching(
            &self.state.lock().await.bookings,
            |b| &b.owner_id == owner_id && filter.admits(b),
            page,
            BOOKINGS_LIST,
            booking_key,
        ))
    }

    async fn save_decision(
        &self,
        next: &Booking,
        expected_version: u32,
        event: OutboxMessage,
    ) -> Result<(), SaveDecisionError> {
        let mut state = self.state.lock().await;
        if next.status == BookingStatus::Accepted {
            if let Some(other) = state.bookings.values().find(|b| {
                b.id != next.id
                    && b.stay.property_id == next.stay.property_id
                    && b.status == BookingStatus::Accepted
                    && b.overlaps(next)
            }) {
                return Err(SaveDecisionError::Overlap(other.id.clone()));
            }
        }
        match state.bookings.get_mut(&next.id) {
            Some(current) if current.version == expected_version => {
                *current = next.clone();
                self.state.queue(event);
                Ok(())
            }
            _ => Err(SaveDecisionError::Conflict),
        }
    }

    async fn park_cancellation(
        &self,
        event_id: &EventId,
        cancellation: &BookingCancellationRequested,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if !state.parked.iter().any(|(id, _)| id == event_id) {
            state.parked.push((event_id.clone(), cancellation.clone()));
        }
        Ok(())
    }

    async fn parked_cancellations(
        &self,
        booking_ids: &[BookingId],
    ) -> Result<Vec<(EventId, BookingCancellationRequested)>, StoreError> {
        let state = self.state.lock().await;
        let mut parked: Vec<_> = state
            .parked
            .iter()
            .filter(|(_, c)| booking_ids.contains(&c.booking_id))
            .cloned()
            .collect();
        parked.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(parked)
    }

    async fn unpark_cancellation(&self, event_id: &EventId) -> Result<(), StoreError> {
        self.state
            .lock()
            .await
            .parked
            .retain(|(id, _)| id != event_id);
        Ok(())
    }
}

//! Applying `booking-updates` (status decisions) and `property-listings`
//! (the catalog). Both are idempotent: versions make stale or repeated events
//! no-ops, and notifications are keyed by event id. A status change is
//! counted in `booking_transitions_total` when it changes this service's
//! copy, and reported a duplicate when the copy already had that version.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use events::{BookingId, BookingStatus, BookingUpdateEvent, Envelope, PropertyEvent};
use service_runtime::{
    messaging::{Applied, EventHandler, HandleError, Handled},
    metrics::Metrics,
    notifications::{Notification, NotificationStore},
};

use crate::{
    domain::{booking::Booking, catalog::CatalogProperty},
    listing_cache::ListingCache,
    store::TravelerStore,
};

/// Handles the booking-updates topic: mirror the status, notify the traveler.
pub struct BookingUpdatesHandler {
    pub store: Arc<dyn TravelerStore>,
    pub notifications: Arc<dyn NotificationStore>,
    /// Where the copy's status changes are counted.
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl EventHandler<BookingUpdateEvent> for BookingUpdatesHandler {
    async fn handle(&self, event: Envelope<BookingUpdateEvent>) -> Handled {
        service_runtime::messaging::handle_as_batch(self, event).await
    }

    /// A batch of decisions in three round trips: the bookings they concern,
    /// the statuses (in order, version-guarded, so a repeated or older
    /// decision changes nothing), then the notifications.
    async fn handle_batch(&self, events: Vec<Envelope<BookingUpdateEvent>>) -> Vec<Handled> {
        match self.apply(&events).await {
            Ok(results) => results,
            Err(e) => vec![Err(e); events.len()],
        }
    }
}

impl BookingUpdatesHandler {
    async fn apply(
        &self,
        events: &[Envelope<BookingUpdateEvent>],
    ) -> Result<Vec<Handled>, HandleError> {
        let mut ids: Vec<BookingId> = events
            .iter()
            .map(|e| {
                let BookingUpdateEvent::StatusChanged(c) = &e.payload;
                c.booking_id.clone()
            })
            .collect();
        ids.sort();
        ids.dedup();
        let bookings: HashMap<BookingId, Booking> = self
            .store
            .bookings_by_ids(&ids)
            .await?
            .into_iter()
            .map(|b| (b.id.clone(), b))
            .collect();
        let mut results = Vec::with_capacity(events.len());
        let mut notifications = Vec::new();
        let mut changes = Vec::new();
        // Each booking's copy as the changes before this one leave it: the
        // store applies a change only over an older version.
        let mut copies: HashMap<&str, (BookingStatus, u32)> = bookings
            .values()
            .map(|b| (b.id.as_str(), (b.status, b.version)))
            .collect();
        let mut transitions = Vec::new();
        for event in events {
            let BookingUpdateEvent::StatusChanged(change) = &event.payload;
            let Some(booking) = bookings.get(&change.booking_id) else {
                results.push(Err(HandleError::permanent(
                    "unknown_booking",
                    format!("no booking {}", change.booking_id),
                )));
                continue;
            };
            if booking.traveler_id != change.traveler_id {
                results.push(Err(HandleError::permanent(
                    "traveler_mismatch",
                    format!(
                        "booking {} does not belong to {}",
                        booking.id, change.traveler_id
                    ),
                )));
                continue;
            }
            let message = match &change.reason {
                Some(reason) => format!("Your booking is now {}: {reason}", change.status.as_str()),
                None => format!("Your booking is now {}", change.status.as_str()),
            };
            notifications.push(Notification {
                id: event.event_id.clone(),
                recipient_id: change.traveler_id.clone(),
                kind: "status_changed".into(),
                booking_id: change.booking_id.clone(),
                status: change.status,
                reason: change.reason.clone(),
                message,
                created_at: change.changed_at,
            });
            changes.push(change.clone());
            let copy = copies
                .get_mut(booking.id.as_str())
                .expect("every known booking has a copy");
            if copy.1 >= change.version {
                results.push(Ok(Applied::Duplicate));
            } else {
                transitions.push((copy.0, change.status));
                *copy = (change.status, change.version);
                results.push(Ok(Applied::Changed));
            }
        }
        // The statuses first: a traveler told of a decision finds the
        // booking in its new status (a notification tells of what is
        // already there). A failure between the two writes retries the
        // batch; a repeated status changes nothing and a repeated
        // notification is stored once (event id).
        self.store.apply_statuses(&changes).await?;
        self.notifications.add_many(&notifications).await?;
        for (from, to) in transitions {
            self.metrics.booking_transition(from.as_str(), to.as_str());
        }
        Ok(results)
    }
}

/// Handles the property-listings topic: keep the catalog current.
pub struct PropertyListingsHandler {
    pub store: Arc<dyn TravelerStore>,
    /// Entries this process serves to booking creation; dropped on change.
    pub cache: Arc<ListingCache>,
}

#[async_trait]
impl EventHandler<PropertyEvent> for PropertyListingsHandler {
    async fn handle(&self, event: Envelope<PropertyEvent>) -> Handled {
        match &event.payload {
            PropertyEvent::Upserted(snapshot) => {
                self.store
                    .upsert_listing(&CatalogProperty::from(snapshot))
                    .await?
            }
            PropertyEvent::Delisted(d) => {
                self.store
                    .delist_listing(&d.property_id, d.version, d.delisted_at)
                    .await?
            }
        }
        self.cache.invalidate(event.payload.property_id());
        Ok(Applied::Changed)
    }
}

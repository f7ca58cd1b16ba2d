//! Applying `booking-updates` (status decisions) and `property-listings`
//! (the catalog). Both are idempotent: versions make stale or repeated events
//! no-ops, and notifications are keyed by event id.

use std::sync::Arc;

use async_trait::async_trait;
use events::{BookingUpdateEvent, Envelope, PropertyEvent};
use service_runtime::{
    messaging::{EventHandler, HandleError},
    notifications::{Notification, NotificationStore},
};

use crate::{domain::catalog::CatalogProperty, store::TravelerStore};

/// Handles the booking-updates topic: mirror the status, notify the traveler.
pub struct BookingUpdatesHandler {
    pub store: Arc<dyn TravelerStore>,
    pub notifications: Arc<dyn NotificationStore>,
}

#[async_trait]
impl EventHandler<BookingUpdateEvent> for BookingUpdatesHandler {
    async fn handle(&self, event: Envelope<BookingUpdateEvent>) -> Result<(), HandleError> {
        let BookingUpdateEvent::StatusChanged(change) = &event.payload;
        let Some(booking) = self.store.booking(&change.booking_id).await? else {
            return Err(HandleError::permanent(
                "unknown_booking",
                format!("no booking {}", change.booking_id),
            ));
        };
        if booking.traveler_id != change.traveler_id {
            return Err(HandleError::permanent(
                "traveler_mismatch",
                format!(
                    "booking {} does not belong to {}",
                    booking.id, change.traveler_id
                ),
            ));
        }
        let message = match &change.reason {
            Some(reason) => format!("Your booking is now {}: {reason}", change.status.as_str()),
            None => format!("Your booking is now {}", change.status.as_str()),
        };
        // The notification first: whoever sees the new status can already
        // read the notification about it.
        self.notifications
            .add(&Notification {
                id: event.event_id.clone(),
                recipient_id: change.traveler_id.clone(),
                kind: "status_changed".into(),
                booking_id: change.booking_id.clone(),
                status: change.status,
                reason: change.reason.clone(),
                message,
                created_at: change.changed_at,
            })
            .await?;
        // Stale (already applied or older) changes leave the booking as it is.
        self.store.apply_status(change).await?;
        Ok(())
    }
}

/// Handles the property-listings topic: keep the catalog current.
pub struct PropertyListingsHandler {
    pub store: Arc<dyn TravelerStore>,
}

#[async_trait]
impl EventHandler<PropertyEvent> for PropertyListingsHandler {
    async fn handle(&self, event: Envelope<PropertyEvent>) -> Result<(), HandleError> {
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
        Ok(())
    }
}

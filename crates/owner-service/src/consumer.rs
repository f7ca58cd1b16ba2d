//! Applying `booking-requests`: new booking requests and travelers'
//! cancellation requests. Every effect is idempotent (keyed by booking id or
//! event id), so redelivered events change nothing twice.

use std::sync::Arc;

use async_trait::async_trait;
use events::{
    Actor, ActorRole, BookingCancellationRequested, BookingRequestEvent, BookingRequested,
    BookingStatus, Envelope,
};
use service_runtime::{
    messaging::{EventHandler, HandleError},
    notifications::{Notification, NotificationStore},
};

use crate::{
    decisions::{decide_and_save, DecisionError},
    domain::booking::Booking,
    store::OwnerStore,
};

/// Handles the booking-requests topic.
pub struct BookingRequestsHandler {
    pub store: Arc<dyn OwnerStore>,
    pub notifications: Arc<dyn NotificationStore>,
    pub updates_topic: String,
}

#[async_trait]
impl EventHandler<BookingRequestEvent> for BookingRequestsHandler {
    async fn handle(&self, event: Envelope<BookingRequestEvent>) -> Result<(), HandleError> {
        match &event.payload {
            BookingRequestEvent::Requested(req) => self.requested(&event.event_id, req).await,
            BookingRequestEvent::CancellationRequested(req) => {
                self.cancellation_requested(&event.event_id, req).await
            }
        }
    }
}

impl BookingRequestsHandler {
    async fn requested(&self, event_id: &str, req: &BookingRequested) -> Result<(), HandleError> {
        let property = self
            .store
            .property(&req.property_id)
            .await?
            .ok_or_else(|| {
                HandleError::permanent(
                    "unknown_property",
                    format!("no property {}", req.property_id),
                )
            })?;
        if property.owner_id != req.owner_id {
            return Err(HandleError::permanent(
                "owner_mismatch",
                format!("property {} is not owned by {}", property.id, req.owner_id),
            ));
        }
        // The notification first: whoever sees the booking can already read
        // the notification about it.
        self.notifications
            .add(&Notification {
                id: event_id.to_string(),
                recipient_id: req.owner_id.clone(),
                kind: "booking_requested".into(),
                booking_id: req.booking_id.clone(),
                status: BookingStatus::Pending,
                reason: None,
                message: format!(
                    "New booking request for {}: {} to {}, {} guest(s)",
                    property.name, req.check_in, req.check_out, req.guests
                ),
                created_at: req.created_at,
            })
            .await?;
        self.store
            .insert_booking(&Booking::from_request(req))
            .await?;
        Ok(())
    }

    /// The traveler's cancellation wins over a PENDING or ACCEPTED booking;
    /// a booking already final stays as it is. Retries when a concurrent
    /// owner decision changed the booking under it.
    async fn cancellation_requested(
        &self,
        event_id: &str,
        req: &BookingCancellationRequested,
    ) -> Result<(), HandleError> {
        let by = Actor {
            role: ActorRole::Traveler,
            id: req.traveler_id.clone(),
        };
        let final_status = loop {
            let booking = self.store.booking(&req.booking_id).await?.ok_or_else(|| {
                HandleError::permanent("unknown_booking", format!("no booking {}", req.booking_id))
            })?;
            if booking.traveler_id != req.traveler_id {
                return Err(HandleError::permanent(
                    "traveler_mismatch",
                    format!(
                        "booking {} does not belong to {}",
                        booking.id, req.traveler_id
                    ),
                ));
            }
            if booking.status.is_final() {
                break booking;
            }
            match decide_and_save(
                self.store.as_ref(),
                &self.updates_topic,
                &booking,
                BookingStatus::Cancelled,
                req.reason.clone(),
                by.clone(),
            )
            .await
            {
                Ok(cancelled) => break cancelled,
                Err(DecisionError::Conflict) => continue,
                Err(DecisionError::Store(e)) => return Err(e.into()),
                Err(e @ (DecisionError::NotAllowed(_) | DecisionError::Overlap(_))) => {
                    return Err(HandleError::permanent("not_cancellable", e.to_string()))
                }
            }
        };
        self.notifications
            .add(&Notification {
                id: event_id.to_string(),
                recipient_id: final_status.owner_id.clone(),
                kind: "cancellation_requested".into(),
                booking_id: final_status.id.clone(),
                status: final_status.status,
                reason: req.reason.clone(),
                message: format!(
                    "The traveler cancelled booking {} ({} to {})",
                    final_status.id, final_status.check_in, final_status.check_out
                ),
                created_at: req.requested_at,
            })
            .await?;
        Ok(())
    }
}

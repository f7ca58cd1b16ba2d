//! Applying `booking-requests`: new booking requests and travelers'
//! cancellation requests. Every effect is idempotent (keyed by booking id or
//! event id), so redelivered events change nothing twice.

use std::sync::Arc;

use async_trait::async_trait;
use events::{
    Actor, ActorRole, BookingCancellationRequested, BookingId, BookingRequestEvent,
    BookingRequested, BookingStatus, Envelope, EventId, PropertyId,
};
use service_runtime::{
    messaging::{Applied, EventHandler, HandleError, Handled},
    metrics::Metrics,
    notifications::{Notification, NotificationStore},
};

use crate::{
    decisions::{decide_and_save, DecisionError},
    domain::booking::Booking,
    property_cache::PropertyCache,
    store::OwnerStore,
};

/// Handles the booking-requests topic.
pub struct BookingRequestsHandler {
    pub store: Arc<dyn OwnerStore>,
    /// The properties requests are checked against.
    pub properties: Arc<PropertyCache>,
    pub notifications: Arc<dyn NotificationStore>,
    pub updates_topic: String,
    /// Where the cancellations it decides are counted.
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl EventHandler<BookingRequestEvent> for BookingRequestsHandler {
    async fn handle(&self, event: Envelope<BookingRequestEvent>) -> Handled {
        service_runtime::messaging::handle_as_batch(self, event).await
    }

    /// New requests are applied together in two round trips (the
    /// bookings, then the notifications), after reading the properties they
    /// name unless the cache has them; cancellations then one by one, in
    /// order. A cancellation always comes after its own booking's request
    /// (same key, same partition), so every booking keeps its order.
    async fn handle_batch(&self, events: Vec<Envelope<BookingRequestEvent>>) -> Vec<Handled> {
        let mut results: Vec<Handled> = vec![Ok(Applied::Changed); events.len()];
        let requests: Vec<(usize, &EventId, &BookingRequested)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.payload {
                BookingRequestEvent::Requested(r) => Some((i, &e.event_id, r)),
                _ => None,
            })
            .collect();
        if let Err(e) = self.requested(&requests, &mut results).await {
            return vec![Err(e); events.len()];
        }
        for (i, event) in events.iter().enumerate() {
            if let BookingRequestEvent::CancellationRequested(req) = &event.payload {
                let result = self.cancellation_requested(&event.event_id, req).await;
                if let Err(HandleError::Transient(_)) = &result {
                    return vec![result; events.len()];
                }
                results[i] = result;
            }
        }
        results
    }
}

impl BookingRequestsHandler {
    /// Stores new booking requests and the owners' notifications about them.
    /// A request for an unknown property, or naming the wrong owner, is a
    /// permanent failure of that request alone (written to `results`).
    async fn requested(
        &self,
        requests: &[(usize, &EventId, &BookingRequested)],
        results: &mut [Handled],
    ) -> Result<(), HandleError> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<PropertyId> = requests
            .iter()
            .map(|(_, _, r)| r.stay.property_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let properties = self.properties.get_many(self.store.as_ref(), &ids).await?;
        let mut notifications = Vec::new();
        let mut bookings = Vec::new();
        for &(i, event_id, req) in requests {
            let Some(property) = properties.get(&req.stay.property_id) else {
                results[i] = Err(HandleError::permanent(
                    "unknown_property",
                    format!("no property {}", req.stay.property_id),
                ));
                continue;
            };
            if property.owner_id != req.owner_id {
                results[i] = Err(HandleError::permanent(
                    "owner_mismatch",
                    format!("property {} is not owned by {}", property.id, req.owner_id),
                ));
                continue;
            }
            notifications.push(Notification {
                id: event_id.clone(),
                recipient_id: req.owner_id.clone(),
                kind: "booking_requested".into(),
                booking_id: req.booking_id.clone(),
                status: BookingStatus::Pending,
                reason: None,
                message: format!(
                    "New booking request for {}: {} to {}, {} guest(s)",
                    property.details.name, req.stay.check_in, req.stay.check_out, req.stay.guests
                ),
                created_at: req.created_at,
            });
            bookings.push(Booking::from_request(req));
        }
        // The bookings first: an owner told of a request can act on it at
        // once (a notification tells of what is already there). A failure
        // between the two writes retries the batch, and both are
        // idempotent (booking id, event id).
        self.store.insert_bookings(&bookings).await?;
        self.notifications.add_many(&notifications).await?;
        self.apply_parked(&bookings).await
    }

    /// Applies the cancellations that arrived before these bookings (see
    /// [`Self::cancellation_requested`]), in the order they arrived, and
    /// forgets each once applied. A failure leaves them parked and fails the
    /// batch, which is retried.
    async fn apply_parked(&self, bookings: &[Booking]) -> Result<(), HandleError> {
        if bookings.is_empty() {
            return Ok(());
        }
        let ids: Vec<BookingId> = bookings.iter().map(|b| b.id.clone()).collect();
        for (event_id, cancellation) in self.store.parked_cancellations(&ids).await? {
            match self.cancellation_requested(&event_id, &cancellation).await {
                Ok(_) | Err(HandleError::Permanent { .. }) => {}
                Err(e) => return Err(e),
            }
            self.store.unpark_cancellation(&event_id).await?;
        }
        Ok(())
    }

    /// The traveler's cancellation wins over a PENDING or ACCEPTED booking;
    /// a booking already final stays as it is. Retries when a concurrent
    /// owner decision changed the booking under it. A cancellation of a
    /// booking not known yet is parked, and applied when the booking arrives.
    async fn cancellation_requested(
        &self,
        event_id: &EventId,
        req: &BookingCancellationRequested,
    ) -> Handled {
        let by = Actor {
            role: ActorRole::Traveler,
            id: req.traveler_id.clone(),
        };
        let final_status = loop {
            let Some(booking) = self.store.booking(&req.booking_id).await? else {
                // Its request has not arrived: events of one booking share a
                // partition and leave the outbox in order, so this takes a
                // fault (or a replay). Kept until the request comes.
                tracing::warn!(booking_id = %req.booking_id, %event_id, "cancellation before its booking; parked until the booking arrives");
                self.store.park_cancellation(event_id, req).await?;
                return Ok(Applied::Changed);
            };
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
                &self.metrics,
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
                id: event_id.clone(),
                recipient_id: final_status.owner_id.clone(),
                kind: "cancellation_requested".into(),
                booking_id: final_status.id.clone(),
                status: final_status.status,
                reason: req.reason.clone(),
                message: format!(
                    "The traveler cancelled booking {} ({} to {})",
                    final_status.id, final_status.stay.check_in, final_status.stay.check_out
                ),
                created_at: req.requested_at,
            })
            .await?;
        Ok(Applied::Changed)
    }
}

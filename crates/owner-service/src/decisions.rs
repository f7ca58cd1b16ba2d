//! Deciding a booking: approve, reject, cancel — from the owner's API or from
//! a traveler's cancellation request. One path, so both obey the same rules.

use events::{Actor, BookingId, BookingStatus, BookingUpdateEvent, Envelope};
use service_runtime::{metrics::Metrics, outbox::OutboxMessage, store::StoreError};

use crate::{
    domain::booking::{decide, Booking, NotAllowed},
    store::{OwnerStore, SaveDecisionError},
    SOURCE,
};

/// Why a decision was not made.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("a {} booking cannot become {}", .0.from.as_str(), .0.to.as_str())]
    NotAllowed(NotAllowed),
    #[error("the booking was changed by another request")]
    Conflict,
    #[error("the stay overlaps accepted booking {0}")]
    Overlap(BookingId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the store's refusal means for the decision.
impl From<SaveDecisionError> for DecisionError {
    fn from(e: SaveDecisionError) -> Self {
        match e {
            SaveDecisionError::Conflict => DecisionError::Conflict,
            SaveDecisionError::Overlap(other) => DecisionError::Overlap(other),
            SaveDecisionError::Store(e) => DecisionError::Store(e),
        }
    }
}

/// Moves `booking` (as read) to `to` and saves it with its
/// `booking.status_changed` event on `updates_topic`. Fails with `Conflict`
/// if the booking changed since it was read: of concurrent decisions on one
/// booking exactly one succeeds, and only it publishes an event — and only
/// it is counted in `booking_transitions_total`.
pub async fn decide_and_save(
    store: &dyn OwnerStore,
    metrics: &Metrics,
    updates_topic: &str,
    booking: &Booking,
    to: BookingStatus,
    reason: Option<String>,
    by: Actor,
) -> Result<Booking, DecisionError> {
    let (next, event) = decide(booking, to, reason, by, events::timestamp::now())
        .map_err(DecisionError::NotAllowed)?;
    let envelope = Envelope::new(SOURCE, BookingUpdateEvent::StatusChanged(event));
    let message = OutboxMessage::new(updates_topic, &envelope);
    store.save_decision(&next, booking.version, message).await?;
    metrics.booking_transition(booking.status.as_str(), next.status.as_str());
    Ok(next)
}

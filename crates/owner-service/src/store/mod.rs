//! owner-service's storage port: properties and authoritative bookings, each
//! change saved together with the event announcing it (the outbox).

mod memory;
mod mongo;

use async_trait::async_trait;
use events::{BookingCancellationRequested, BookingId, BookingStatus, EventId, PropertyId, UserId};
use service_runtime::{
    outbox::OutboxMessage,
    paging::{After, List, Page, PageRequest},
    store::StoreError,
};

use crate::domain::{booking::Booking, property::Property};

pub use memory::InMemoryOwnerStore;
pub use mongo::{MongoOwnerStore, OUTBOX_COLLECTIONS};

/// An owner's properties, by name then id, a page at a time.
pub const PROPERTIES_LIST: List = List::by_name("properties");

/// An owner's bookings, newest first, a page at a time.
pub const BOOKINGS_LIST: List = List::newest_first("bookings");

/// A property's place in [`PROPERTIES_LIST`].
pub fn property_key(p: &Property) -> After {
    After {
        key: p.details.name.clone(),
        id: p.id.to_string(),
    }
}

/// A booking's place in [`BOOKINGS_LIST`].
pub fn booking_key(b: &Booking) -> After {
    After {
        key: events::timestamp::format(&b.created_at),
        id: b.id.to_string(),
    }
}

/// Filters for listing an owner's bookings.
#[derive(Debug, Clone, Default)]
pub struct BookingFilter {
    pub status: Option<BookingStatus>,
    pub property_id: Option<PropertyId>,
}

impl BookingFilter {
    /// Whether `b` passes the filter: its status, and its property, when
    /// the filter names them. (The owner is the list's, not the filter's.)
    pub fn admits(&self, b: &Booking) -> bool {
        self.status.is_none_or(|s| b.status == s)
            && self
                .property_id
                .as_ref()
                .is_none_or(|p| &b.stay.property_id == p)
    }
}

/// Why a decision could not be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveDecisionError {
    /// The booking changed since it was read (another decision won).
    #[error("the booking changed concurrently")]
    Conflict,
    /// Accepting would overlap this already accepted booking.
    #[error("overlaps accepted booking {0}")]
    Overlap(BookingId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The port both adapters implement; one contract test suite runs against both.
#[async_trait]
pub trait OwnerStore: Send + Sync {
    /// Saves a new property with its `property.upserted` event.
    async fn insert_property(&self, p: &Property, event: OutboxMessage) -> Result<(), StoreError>;
    /// Replaces a property if it still has `expected_version`; false otherwise.
    async fn update_property(
        &self,
        p: &Property,
        expected_version: u64,
        event: OutboxMessage,
    ) -> Result<bool, StoreError>;
    async fn property(&self, id: &PropertyId) -> Result<Option<Property>, StoreError>;
    /// A page of the owner's properties, by name then id.
    async fn properties_of(
        &self,
        owner_id: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Property>, StoreError>;

    /// The properties with these ids (those that exist), in one round trip.
    async fn properties_by_ids(&self, ids: &[PropertyId]) -> Result<Vec<Property>, StoreError>;

    /// Stores a requested booking; false if it was already stored (redelivery).
    async fn insert_booking(&self, b: &Booking) -> Result<bool, StoreError>;
    /// Stores requested bookings in one round trip; ones already stored
    /// (redeliveries) are left as they are.
    async fn insert_bookings(&self, bs: &[Booking]) -> Result<(), StoreError>;
    async fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError>;
    /// A page of the owner's bookings, newest first.
    async fn bookings_of(
        &self,
        owner_id: &UserId,
        filter: &BookingFilter,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError>;

    /// Saves a decision (`next` has `expected_version + 1`) with its event,
    /// atomically, only if the stored booking still has `expected_version`.
    /// When `next` is ACCEPTED, also only if no other ACCEPTED booking of the
    /// property overlaps it — atomically across concurrent callers and replicas.
    async fn save_decision(
        &self,
        next: &Booking,
        expected_version: u32,
        event: OutboxMessage,
    ) -> Result<(), SaveDecisionError>;

    /// Keeps a traveler's cancellation that arrived before the booking it
    /// cancels (event `event_id`; a repeat is a no-op), so that it is applied
    /// when the booking arrives instead of being lost to the dead letters.
    async fn park_cancellation(
        &self,
        event_id: &EventId,
        cancellation: &BookingCancellationRequested,
    ) -> Result<(), StoreError>;
    /// The parked cancellations of these bookings, with their event ids, in
    /// event id order: ids are time-ordered (UUIDv7), so the order they were
    /// written in.
    async fn parked_cancellations(
        &self,
        booking_ids: &[BookingId],
    ) -> Result<Vec<(EventId, BookingCancellationRequested)>, StoreError>;
    /// Forgets a parked cancellation once it has been applied.
    async fn unpark_cancellation(&self, event_id: &EventId) -> Result<(), StoreError>;
}

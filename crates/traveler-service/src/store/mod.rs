//! traveler-service's storage port: the catalog, the traveler's bookings
//! (each created together with its `booking.requested` event), and the
//! status mirror fed by `booking-updates`.

mod memory;
mod mongo;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{BookingId, BookingStatus, BookingStatusChanged, PropertyId, UserId};
use service_runtime::{
    outbox::OutboxMessage,
    paging::{After, List, Page, PageRequest},
    store::StoreError,
};

use crate::domain::{
    booking::Booking,
    catalog::{CatalogProperty, CatalogQuery},
};

pub use memory::InMemoryTravelerStore;
pub use mongo::{MongoTravelerStore, BOOKINGS, CATALOG, OUTBOX_COLLECTIONS};

/// A traveler's bookings, newest first, a page at a time.
pub const BOOKINGS_LIST: List = List::newest_first("bookings");

/// The catalog, by name then id, a page at a time.
pub const CATALOG_LIST: List = List::by_name("catalog");

/// A booking's place in [`BOOKINGS_LIST`].
pub fn booking_key(b: &Booking) -> After {
    After {
        key: events::timestamp::format(&b.created_at),
        id: b.id.to_string(),
    }
}

/// A listing's place in [`CATALOG_LIST`].
pub fn listing_key(p: &CatalogProperty) -> After {
    After {
        key: p.details.name.clone(),
        id: p.id.to_string(),
    }
}

/// An `Idempotency-Key` scoped to its traveler, with the request's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub scoped_key: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// The id of the booking created under this key. Derived from the key
    /// (a name-based UUID), so every retry names the same booking and the
    /// store's unique id refuses a second one: no separate unique index,
    /// which every write of a booking would pay for.
    pub fn booking_id(&self) -> BookingId {
        booking_id_for_key(&self.scoped_key)
    }

    /// What a request under this key gets when the key already created
    /// `original`, from a request with `fingerprint`: that booking if the
    /// request is the same, nothing (the key is reused) if it is not.
    pub fn replay(&self, original: Booking, fingerprint: &str) -> Option<Booking> {
        (fingerprint == self.fingerprint).then_some(original)
    }

    /// [`Self::replay`] as the outcome of a creation.
    pub fn replay_outcome(&self, original: Booking, fingerprint: &str) -> CreateOutcome {
        self.replay(original, fingerprint)
            .map_or(CreateOutcome::KeyReused, CreateOutcome::Replayed)
    }
}

/// See [`IdempotencyKey::booking_id`].
pub fn booking_id_for_key(scoped_key: &str) -> BookingId {
    /// The namespace of booking ids derived from idempotency keys.
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1e_4a52_9b1d_4c0e_a3f7_2d8c_5b90_e714);
    uuid::Uuid::new_v5(&NAMESPACE, scoped_key.as_bytes())
        .to_string()
        .into()
}

/// The result of creating a booking.
// Returned once per request and matched at once, never stored: boxing the
// booking would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created,
    /// The key was used before for the same request: this is its booking.
    Replayed(Booking),
    /// The key was used before for a different request.
    KeyReused,
}

/// The result of a traveler's cancellation request.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// Recorded, and the request event queued.
    Requested(Booking),
    /// Already requested earlier; nothing new is published.
    AlreadyRequested(Booking),
    /// REJECTED or CANCELLED already.
    Final(Booking),
    NotFound,
}

/// The result of applying a status change from owner-service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    Applied,
    /// This or a newer change was applied before (redelivery or reordering).
    Stale,
    UnknownBooking,
}

/// The port both adapters implement; one contract test suite runs against both.
#[async_trait]
pub trait TravelerStore: Send + Sync {
    /// Inserts or replaces a catalog entry unless a newer version is stored.
    async fn upsert_listing(&self, p: &CatalogProperty) -> Result<(), StoreError>;
    /// Marks a listing inactive unless a newer version is stored.
    async fn delist_listing(
        &self,
        id: &PropertyId,
        version: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn listing(&self, id: &PropertyId) -> Result<Option<CatalogProperty>, StoreError>;
    /// The listings among `ids` that exist, in no particular order: one
    /// read for many (the listing cache's refresh).
    async fn listings(&self, ids: &[PropertyId]) -> Result<Vec<CatalogProperty>, StoreError>;
    /// A page of the active listings matching `q`, in [`CATALOG_LIST`] order.
    async fn search_listings(
        &self,
        q: &CatalogQuery,
        page: &PageRequest,
    ) -> Result<Page<CatalogProperty>, StoreError>;

    /// Saves a new booking with its event, honouring an idempotency key. A
    /// booking created under a key has the id [`IdempotencyKey::booking_id`].
    async fn create_booking(
        &self,
        b: &Booking,
        key: Option<&IdempotencyKey>,
        event: OutboxMessage,
    ) -> Result<CreateOutcome, StoreError>;
    /// The booking created under an idempotency key, with the fingerprint of
    /// the request that created it.
    async fn booking_by_idempotency_key(
        &self,
        scoped_key: &str,
    ) -> Result<Option<(Booking, String)>, StoreError>;
    async fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError>;
    /// A page of the traveler's bookings, newest first.
    async fn bookings_of(
        &self,
        traveler_id: &UserId,
        status: Option<BookingStatus>,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError>;
    /// Records the traveler's wish to cancel with its event, once.
    async fn request_cancellation(
        &self,
        id: &BookingId,
        traveler_id: &UserId,
        at: DateTime<Utc>,
        event: OutboxMessage,
    ) -> Result<CancelOutcome, StoreError>;
    /// Applies owner-service's decision if it is newer than what is stored.
    async fn apply_status(
        &self,
        change: &BookingStatusChanged,
    ) -> Result<StatusApplied, StoreError>;
    /// Applies decisions in order, each only if newer than what is stored,
    /// in one round trip.
    async fn apply_statuses(&self, changes: &[BookingStatusChanged]) -> Result<(), StoreError>;
    /// The bookings with these ids (those that exist), in one round trip.
    async fn bookings_by_ids(&self, ids: &[BookingId]) -> Result<Vec<Booking>, StoreError>;
}

use async_trait::async_trait;
use bson::{doc, Document};
use events::{BookingCancellationRequested, BookingId, BookingStatus, EventId, PropertyId, UserId};
use mongodb::{options::IndexOptions, Collection, Database, IndexModel};

use service_runtime::{
    mongo,
    outbox::{OutboxMessage, OutboxSignal, OutboxWrites},
    paging::{Page, PageRequest},
    store::StoreError,
};

use super::{
    booking_key, property_key, BookingFilter, OwnerStore, SaveDecisionError, BOOKINGS_LIST,
    PROPERTIES_LIST,
};
use crate::domain::{booking::Booking, property::Property};

const PROPERTIES: &str = "properties";
const BOOKINGS: &str = "bookings";

/// Cancellations waiting for their booking.
const PARKED: &str = "parked_cancellations";

/// Collections whose documents carry an embedded outbox.
pub const OUTBOX_COLLECTIONS: [&str; 2] = [PROPERTIES, BOOKINGS];

/// owner-service state in its own MongoDB database.
///
/// Each change is one atomic write of the document together with its event
/// (`$push` to the document's `outbox`). Accepting a booking additionally
/// needs "no overlapping ACCEPTED booking" to hold across documents: an
/// accepted booking lists the nights it holds (`claimed_nights`, one key per
/// property and night) under a unique index, so the database refuses a
/// second claim of a night, whichever replica makes it. Accepting is then
/// still one single-document update, and so is cancelling, which drops the
/// claim. Nothing is scanned and no transaction is needed.
pub struct MongoOwnerStore {
    properties: Collection<Property>,
    bookings: Collection<Booking>,
    /// Cancellations that arrived before their booking (see
    /// [`OwnerStore::park_cancellation`]).
    parked: Collection<Document>,
    /// Property writes with their `property-listings` events.
    property_writes: OutboxWrites,
    /// Decisions with their `booking-updates` events.
    booking_writes: OutboxWrites,
}

/// The field of an accepted booking that holds its nights.
const CLAIMED_NIGHTS: &str = "claimed_nights";

impl MongoOwnerStore {
    pub async fn new(db: &Database, signal: OutboxSignal) -> Result<Self, StoreError> {
        let properties = db.collection::<Property>(PROPERTIES);
        let bookings = db.collection::<Booking>(BOOKINGS);
        // An owner's properties in page order.
        mongo::ensure_indexes(
            &properties,
            vec![mongo::index(doc! {"owner_id": 1, "name": 1, "_id": 1})],
        )
        .await?;
        // Every index is paid on every write of a booking, so there is one
        // per need and no more.
        mongo::ensure_indexes(
            &bookings,
            vec![
                // An owner's listing in page order, with `?status=` (one
                // run of the index) or without (one run per status, merged:
                // the query names every status); `?property_id=` is
                // filtered along the walk.
                mongo::index(doc! {"owner_id": 1, "status": 1, "created_at": -1, "_id": -1}),
                // No night is held by two accepted bookings. Unique across
                // documents; sparse, so only accepted bookings are indexed.
                IndexModel::builder()
                    .keys(doc! {CLAIMED_NIGHTS: 1})
                    .options(IndexOptions::builder().unique(true).sparse(true).build())
                    .build(),
            ],
        )
        .await?;
        let parked = db.collection::<Document>(PARKED);
        mongo::ensure_indexes(&parked, vec![mongo::index(doc! {"booking_id": 1})]).await?;
        // Their predecessors, which could not give the page order.
        mongo::drop_superseded_indexes(&properties, &["owner_id_1_created_at_-1"]).await?;
        mongo::drop_superseded_indexes(&bookings, &["owner_id_1_status_1_created_at_-1"]).await?;
        Ok(Self {
            property_writes: OutboxWrites::new(
                PROPERTIES,
                properties.clone_with_type(),
                signal.clone(),
            ),
            booking_writes: OutboxWrites::new(BOOKINGS, bookings.clone_with_type(), signal),
            properties,
            bookings,
            parked,
        })
    }

    fn raw_bookings(&self) -> Collection<Document> {
        self.bookings.clone_with_type()
    }

    /// The accepted booking (other than `b`) holding one of `b`'s nights.
    async fn night_holder(&self, b: &Booking) -> Result<Option<BookingId>, StoreError> {
        let holder = self
            .raw_bookings()
            .find_one(doc! {CLAIMED_NIGHTS: {"$in": night_keys(b)}, "_id": {"$ne": &b.id}})
            .projection(doc! {"_id": 1})
            .await
            .map_err(mongo::read_error)?;
        Ok(holder.and_then(|d| d.get_str("_id").ok().map(BookingId::from)))
    }
}

/// Leaves out what a booking document carries besides the booking: its
/// pending events (about 1 KB each) and its claimed nights. Lists are read
/// often (an owner polling PENDING requests), and the server encodes every
/// byte it sends.
fn booking_fields() -> Document {
    doc! {"outbox": 0, CLAIMED_NIGHTS: 0}
}

/// The `claimed_nights` keys of `b`'s stay: one per night, check-out excluded.
fn night_keys(b: &Booking) -> Vec<String> {
    let stay = &b.stay;
    stay.check_in
        .iter_days()
        .take_while(|night| *night < stay.check_out)
        .map(|night| format!("{}/{night}", stay.property_id))
        .collect()
}

/// The update that saves a decision with its event. An acceptance claims the
/// stay's nights; any other decision releases them (a no-op unless the
/// booking was accepted).
/// A decision's change to the booking document (its event is appended by
/// [`OutboxWrites::update`]).
fn decision_update(next: &Booking) -> Result<Document, StoreError> {
    let mut set = mongo::to_document(next)?;
    let mut update = doc! {};
    if next.status == BookingStatus::Accepted {
        set.insert(CLAIMED_NIGHTS, night_keys(next));
    } else {
        update.insert("$unset", doc! {CLAIMED_NIGHTS: ""});
    }
    update.insert("$set", set);
    Ok(update)
}

#[async_trait]
impl OwnerStore for MongoOwnerStore {
    async fn insert_property(&self, p: &Property, event: OutboxMessage) -> Result<(), StoreError> {
        self.property_writes
            .insert(mongo::with_id(p, &p.id)?, event)
            .await
            .map_err(|e| e.into_store_error("property"))
    }

    async fn update_property(
        &self,
        p: &Property,
        expected_version: u64,
        event: OutboxMessage,
    ) -> Result<bool, StoreError> {
        let set = mongo::to_document(p)?;
        let updated = self
            .property_writes
            .update(
                doc! {"_id": &p.id, "version": expected_version as i64},
                doc! {"$set": set},
                Some(doc! {}),
                event,
            )
            .await
            .map_err(|e| e.into_store_error("property"))?;
        Ok(updated.is_some())
    }

    async fn property(&self, id: &PropertyId) -> Result<Option<Property>, StoreError> {
        mongo::find_by_id(&self.properties, id, None).await
    }

    async fn properties_of(
        &self,
        owner_id: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Property>, StoreError> {
        let filter = doc! {"owner_id": owner_id};
        let projection = doc! {"outbox": 0};
        mongo::find_page(
            &self.properties,
            filter,
            projection,
            page,
            PROPERTIES_LIST,
            property_key,
        )
        .await
    }

    async fn properties_by_ids(&self, ids: &[PropertyId]) -> Result<Vec<Property>, StoreError> {
        mongo::find_all(self.properties.find(doc! {"_id": {"$in": ids}})).await
    }

    async fn insert_bookings(&self, bs: &[Booking]) -> Result<(), StoreError> {
        if bs.is_empty() {
            return Ok(());
        }
        let documents = bs
            .iter()
            .map(|b| mongo::with_id(b, &b.id))
            .collect::<Result<Vec<_>, _>>()?;
        // Unordered: a redelivered booking (duplicate id) does not stop the rest.
        let result = self
            .raw_bookings()
            .insert_many(documents)
            .ordered(false)
            .await;
        mongo::inserted_once(result).map(|_| ())
    }

    async fn insert_booking(&self, b: &Booking) -> Result<bool, StoreError> {
        let result = self
            .raw_bookings()
            .insert_one(mongo::with_id(b, &b.id)?)
            .await;
        mongo::inserted_once(result)
    }

    async fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError> {
        mongo::find_by_id(&self.bookings, id, booking_fields()).await
    }

    async fn bookings_of(
        &self,
        owner_id: &UserId,
        filter: &BookingFilter,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        let mut query = doc! {"owner_id": owner_id, "status": mongo::status_filter(filter.status)};
        if let Some(property_id) = &filter.property_id {
            query.insert("property_id", property_id);
        }
        mongo::find_page(
            &self.bookings,
            query,
            booking_fields(),
            page,
            BOOKINGS_LIST,
            booking_key,
        )
        .await
    }

    async fn save_decision(
        &self,
        next: &Booking,
        expected_version: u32,
        event: OutboxMessage,
    ) -> Result<(), SaveDecisionError> {
        let updated = match self
            .booking_writes
            .update(
                doc! {"_id": &next.id, "version": expected_version},
                decision_update(next)?,
                Some(doc! {}),
                event,
            )
            .await
        {
            Ok(updated) => updated,
            // Only `claimed_nights` is unique among the fields written.
            Err(e) if e.is_duplicate_key() => {
                return Err(match self.night_holder(next).await? {
                    Some(holder) => SaveDecisionError::Overlap(holder),
                    // Released since: the caller may simply try again.
                    None => SaveDecisionError::Conflict,
                });
            }
            Err(e) => return Err(e.into_store_error("booking").into()),
        };
        if updated.is_none() {
            return Err(SaveDecisionError::Conflict);
        }
        Ok(())
    }

    async fn park_cancellation(
        &self,
        event_id: &EventId,
        cancellation: &BookingCancellationRequested,
    ) -> Result<(), StoreError> {
        let request = mongo::to_document(cancellation)?;
        let parked = doc! {
            "_id": event_id,
            "booking_id": &cancellation.booking_id,
            "request": request,
            "parked_at": bson::DateTime::now(),
        };
        // A redelivered cancellation is parked once (its event id).
        mongo::inserted_once(self.parked.insert_one(parked).await).map(|_| ())
    }

    async fn parked_cancellations(
        &self,
        booking_ids: &[BookingId],
    ) -> Result<Vec<(EventId, BookingCancellationRequested)>, StoreError> {
        let documents = mongo::find_all(
            self.parked
                .find(doc! {"booking_id": {"$in": booking_ids}})
                .sort(doc! {"_id": 1}),
        )
        .await?;
        documents
            .into_iter()
            .map(|d| {
                let id = EventId::from(d.get_str("_id").unwrap_or_default());
                let request = d.get_document("request").cloned().unwrap_or_default();
                mongo::from_document(request, "a parked cancellation").map(|r| (id, r))
            })
            .collect()
    }

    async fn unpark_cancellation(&self, event_id: &EventId) -> Result<(), StoreError> {
        self.parked
            .delete_one(doc! {"_id": event_id})
            .await
            .map(|_| ())
            .map_err(mongo::read_error)
    }
}

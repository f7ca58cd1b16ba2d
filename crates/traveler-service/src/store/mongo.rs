use async_trait::async_trait;
use bson::{doc, Document};
use chrono::{DateTime, Utc};
use events::{BookingId, BookingStatus, BookingStatusChanged, PropertyId, UserId};
use mongodb::{Collection, Database};
use service_runtime::{
    mongo::{self, InsertBatcher, Inserted},
    outbox::{OutboxMessage, OutboxSignal, OutboxWrites},
    paging::{Page, PageRequest},
    store::StoreError,
};

use super::{
    booking_id_for_key, booking_key, listing_key, CancelOutcome, CreateOutcome, IdempotencyKey,
    StatusApplied, TravelerStore, BOOKINGS_LIST, CATALOG_LIST,
};
use crate::domain::{
    booking::Booking,
    catalog::{CatalogProperty, CatalogQuery},
};

/// The traveler's bookings, each with its own pending events.
pub const BOOKINGS: &str = "bookings";

/// The catalog read model, rebuilt from `property-listings`.
pub const CATALOG: &str = "catalog";

/// Collections whose documents carry an embedded outbox.
pub const OUTBOX_COLLECTIONS: [&str; 1] = [BOOKINGS];

/// traveler-service state in its own MongoDB database.
///
/// Creating a booking is one insert: the booking, its `booking.requested`
/// event (in `outbox`) and its idempotency key in one document. A keyed
/// booking's id is derived from the key, so the unique `_id` refuses a
/// retry's second booking and second event.
/// Concurrent creations share `insertMany` commands ([`InsertBatcher`]).
///
/// Every index is paid on every write of a booking (insert, status change,
/// outbox `$pull`), so there is one per query shape and no more.
pub struct MongoTravelerStore {
    db: Database,
    catalog: Collection<CatalogProperty>,
    bookings: Collection<Booking>,
    booking_inserts: InsertBatcher,
    /// Bookings with the events they publish (`booking-requests`).
    booking_writes: OutboxWrites,
}

impl MongoTravelerStore {
    pub async fn new(db: &Database, signal: OutboxSignal) -> Result<Self, StoreError> {
        Self::with_collections(db, CATALOG, BOOKINGS, signal).await
    }

    /// The same store over other collections of `db`: an operator's
    /// rebuild fills a fresh collection through exactly the code that keeps
    /// the live one current, then swaps it in.
    pub async fn with_collections(
        db: &Database,
        catalog: &str,
        bookings: &str,
        signal: OutboxSignal,
    ) -> Result<Self, StoreError> {
        let catalog = db.collection::<CatalogProperty>(catalog);
        let bookings = db.collection::<Booking>(bookings);
        // The catalog changes only when a property does, and is browsed far
        // more often: one index per browse shape, each ending in the page
        // order (name, then id) so a page is a bounded index walk.
        mongo::ensure_indexes(
            &catalog,
            vec![
                // `?city=` (with or without `?guests=`, which is filtered
                // along the walk).
                mongo::index(doc! {"active": 1, "city_key": 1, "name": 1, "_id": 1}),
                // The whole catalog.
                mongo::index(doc! {"active": 1, "name": 1, "_id": 1}),
            ],
        )
        .await?;
        mongo::ensure_indexes(
            &bookings,
            vec![
                // A traveler's listing in page order, with `?status=` (one
                // run of the index) or without (one run per status, merged:
                // the query names every status).
                mongo::index(doc! {"traveler_id": 1, "status": 1, "created_at": -1, "_id": -1}),
            ],
        )
        .await?;
        // Their predecessors, which could not give the page order.
        mongo::drop_superseded_indexes(&catalog, &["active_1_city_key_1"]).await?;
        mongo::drop_superseded_indexes(&bookings, &["traveler_id_1_status_1_created_at_-1"])
            .await?;
        Ok(Self {
            db: db.clone(),
            catalog,
            booking_inserts: InsertBatcher::new(bookings.clone_with_type()),
            booking_writes: OutboxWrites::new(BOOKINGS, bookings.clone_with_type(), signal),
            bookings,
        })
    }

    fn raw_bookings(&self) -> Collection<Document> {
        self.bookings.clone_with_type()
    }
}

/// Runs a version-guarded upsert. A duplicate key means the document exists
/// (a newer version, or a concurrent first insert of the same id); the
/// guarded update is then retried without upsert, so a newer version that
/// lost the insert race is still applied and an older one is still ignored.
async fn guarded_upsert(
    coll: &Collection<Document>,
    filter: Document,
    update: Document,
) -> Result<(), StoreError> {
    match coll
        .update_one(filter.clone(), update.clone())
        .upsert(true)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if mongo::is_duplicate_key(&e) => coll
            .update_one(filter, update)
            .await
            .map(|_| ())
            .map_err(mongo::read_error),
        Err(e) => Err(mongo::read_error(e)),
    }
}

#[async_trait]
impl TravelerStore for MongoTravelerStore {
    async fn upsert_listing(&self, p: &CatalogProperty) -> Result<(), StoreError> {
        let mut set = mongo::to_document(p)?;
        set.insert("city_key", p.details.city.to_lowercase());
        guarded_upsert(
            &self.catalog.clone_with_type(),
            doc! {"_id": &p.id, "version": {"$lt": p.version as i64}},
            doc! {"$set": set},
        )
        .await
    }

    async fn delist_listing(
        &self,
        id: &PropertyId,
        version: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.catalog
            .update_one(
                doc! {"_id": id, "version": {"$lt": version as i64}},
                doc! {"$set": {"active": false, "version": version as i64, "updated_at": events::timestamp::format(&at)}},
            )
            .await
            .map(|_| ())
            .map_err(mongo::read_error)
    }

    async fn listing(&self, id: &PropertyId) -> Result<Option<CatalogProperty>, StoreError> {
        mongo::find_by_id(&self.catalog, id, None).await
    }

    async fn listings(&self, ids: &[PropertyId]) -> Result<Vec<CatalogProperty>, StoreError> {
        mongo::find_all(self.catalog.find(doc! {"_id": {"$in": ids}})).await
    }

    async fn search_listings(
        &self,
        q: &CatalogQuery,
        page: &PageRequest,
    ) -> Result<Page<CatalogProperty>, StoreError> {
        let mut filter = doc! {"active": true};
        if let Some(city) = &q.city {
            filter.insert("city_key", city.to_lowercase());
        }
        if let Some(guests) = q.guests {
            filter.insert("max_guests", doc! {"$gte": guests as i64});
        }
        mongo::find_page(&self.catalog, filter, None, page, CATALOG_LIST, listing_key).await
    }

    async fn create_booking(
        &self,
        b: &Booking,
        key: Option<&IdempotencyKey>,
        event: OutboxMessage,
    ) -> Result<CreateOutcome, StoreError> {
        let mut d = OutboxWrites::new_document(mongo::with_id(b, &b.id)?, &event)?;
        if let Some(key) = key {
            d.insert("idempotency_key", &key.scoped_key);
            d.insert("request_fingerprint", &key.fingerprint);
        }
        match (self.booking_inserts.insert(d).await?, key) {
            (Inserted::Yes, _) => {
                self.booking_writes.inserted(event);
                Ok(CreateOutcome::Created)
            }
            (Inserted::DuplicateKey, Some(key)) => {
                let (booking, fingerprint) = self
                    .booking_by_idempotency_key(&key.scoped_key)
                    .await?
                    .ok_or_else(|| StoreError::unavailable("idempotency key vanished"))?;
                Ok(key.replay_outcome(booking, &fingerprint))
            }
            (Inserted::DuplicateKey, None) => Err(StoreError::Duplicate("booking".into())),
        }
    }

    async fn booking_by_idempotency_key(
        &self,
        scoped_key: &str,
    ) -> Result<Option<(Booking, String)>, StoreError> {
        let Some(document) = self
            .raw_bookings()
            .find_one(doc! {"_id": booking_id_for_key(scoped_key), "idempotency_key": scoped_key})
            .await
            .map_err(mongo::read_error)?
        else {
            return Ok(None);
        };
        let fingerprint = document
            .get_str("request_fingerprint")
            .unwrap_or_default()
            .to_string();
        Ok(Some((
            mongo::from_document(document, "a booking")?,
            fingerprint,
        )))
    }

    async fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError> {
        mongo::find_by_id(&self.bookings, id, booking_fields()).await
    }

    async fn bookings_of(
        &self,
        traveler_id: &UserId,
        status: Option<BookingStatus>,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        let filter = doc! {"traveler_id": traveler_id, "status": mongo::status_filter(status)};
        mongo::find_page(
            &self.bookings,
            filter,
            booking_fields(),
            page,
            BOOKINGS_LIST,
            booking_key,
        )
        .await
    }

    async fn request_cancellation(
        &self,
        id: &BookingId,
        traveler_id: &UserId,
        at: DateTime<Utc>,
        event: OutboxMessage,
    ) -> Result<CancelOutcome, StoreError> {
        let at_text = events::timestamp::format(&at);
        let updated = self
            .booking_writes
            .update(
                doc! {
                    "_id": id,
                    "traveler_id": traveler_id,
                    "status": {"$in": [BookingStatus::Pending.as_str(), BookingStatus::Accepted.as_str()]},
                    "cancellation_requested_at": null,
                },
                doc! {"$set": {"cancellation_requested_at": &at_text, "updated_at": &at_text}},
                None,
                event,
            )
            .await
            .map_err(|e| e.into_store_error("booking"))?;
        if let Some(document) = updated {
            return Ok(CancelOutcome::Requested(mongo::from_document(
                document,
                "a booking",
            )?));
        }
        Ok(match self.booking(id).await? {
            Some(b) if &b.traveler_id != traveler_id => CancelOutcome::NotFound,
            Some(b) if b.status.is_final() => CancelOutcome::Final(b),
            Some(b) => CancelOutcome::AlreadyRequested(b),
            None => CancelOutcome::NotFound,
        })
    }

    async fn apply_status(
        &self,
        change: &BookingStatusChanged,
    ) -> Result<StatusApplied, StoreError> {
        let result = self
            .bookings
            .update_one(
                doc! {"_id": &change.booking_id, "version": {"$lt": change.version}},
                doc! {"$set": status_fields(change)},
            )
            .await
            .map_err(mongo::read_error)?;
        if result.matched_count == 1 {
            return Ok(StatusApplied::Applied);
        }
        let exists = self
            .bookings
            .count_documents(doc! {"_id": &change.booking_id})
            .await
            .map_err(mongo::read_error)?;
        Ok(if exists > 0 {
            StatusApplied::Stale
        } else {
            StatusApplied::UnknownBooking
        })
    }

    async fn apply_statuses(&self, changes: &[BookingStatusChanged]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        // One `update` command with a statement per change: ordered, so two
        // changes of one booking apply in sequence; each is version-guarded.
        let statements: Vec<Document> = changes
            .iter()
            .map(|c| {
                doc! {
                    "q": {"_id": &c.booking_id, "version": {"$lt": c.version}},
                    "u": {"$set": status_fields(c)},
                }
            })
            .collect();
        let reply = self
            .db
            .run_command(
                doc! {"update": self.bookings.name(), "updates": statements, "ordered": true},
            )
            .await
            .map_err(mongo::read_error)?;
        if let Ok(errors) = reply.get_array("writeErrors") {
            if !errors.is_empty() {
                let context = format!("status update failed: {errors:?}");
                let permanent = errors.iter().any(|e| {
                    e.as_document()
                        .and_then(|e| e.get_i32("code").ok())
                        .is_some_and(mongo::is_permanent_code)
                });
                return Err(if permanent {
                    StoreError::Permanent {
                        context,
                        source: None,
                    }
                } else {
                    StoreError::unavailable(context)
                });
            }
        }
        Ok(())
    }

    async fn bookings_by_ids(&self, ids: &[BookingId]) -> Result<Vec<Booking>, StoreError> {
        mongo::find_all(
            self.bookings
                .find(doc! {"_id": {"$in": ids}})
                .projection(booking_fields()),
        )
        .await
    }
}

/// Leaves out what a booking document carries besides the booking: its
/// pending events (about 1 KB each) and its idempotency key. Lists are read
/// often (a client polling its PENDING bookings), and the server encodes
/// every byte it sends.
fn booking_fields() -> Document {
    doc! {"outbox": 0, "idempotency_key": 0, "request_fingerprint": 0}
}

/// The fields a status change sets.
fn status_fields(change: &BookingStatusChanged) -> Document {
    doc! {
        "status": change.status.as_str(),
        "status_reason": change.reason.clone(),
        "version": change.version,
        "updated_at": events::timestamp::format(&change.changed_at),
    }
}

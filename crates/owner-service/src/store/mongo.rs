use async_trait::async_trait;
use bson::{doc, Document};
use events::BookingStatus;
use futures::TryStreamExt;
use mongodb::{
    error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT},
    options::FindOptions,
    ClientSession, Collection, Database, IndexModel,
};
use std::{collections::HashMap, sync::Arc, time::Duration};

use service_runtime::{
    backoff::Backoff,
    mongo::{self, outbox_entry},
    outbox::{OutboxMessage, OutboxSignal},
    store::StoreError,
};

use super::{BookingFilter, OwnerStore, SaveDecisionError};
use crate::domain::{booking::Booking, property::Property};

/// Collections whose documents carry an embedded outbox.
pub const OUTBOX_COLLECTIONS: [&str; 2] = ["properties", "bookings"];

/// owner-service state in its own MongoDB database.
///
/// Each change is one atomic write of the document together with its event
/// (`$push` to the document's `outbox`). Accepting a booking additionally
/// needs "no overlapping ACCEPTED booking" to hold across documents, so it
/// runs in a transaction that first writes the property's row in
/// `property_locks`: two concurrent acceptances for one property then
/// write-conflict and one retries, seeing the other's result.
pub struct MongoOwnerStore {
    db: Database,
    properties: Collection<Property>,
    bookings: Collection<Booking>,
    locks: Collection<Document>,
    signal: OutboxSignal,
    acceptance_turns: AcceptanceTurns,
}

/// How often a transaction is retried on a transient error (write conflict).
const MAX_TRANSACTION_ATTEMPTS: usize = 20;

impl MongoOwnerStore {
    pub async fn new(db: &Database, signal: OutboxSignal) -> Result<Self, StoreError> {
        let properties = db.collection::<Property>("properties");
        let bookings = db.collection::<Booking>("bookings");
        mongo::ensure_indexes(
            &properties,
            vec![IndexModel::builder()
                .keys(doc! {"owner_id": 1, "created_at": -1})
                .build()],
        )
        .await?;
        mongo::ensure_indexes(
            &bookings,
            vec![
                IndexModel::builder()
                    .keys(doc! {"owner_id": 1, "created_at": -1})
                    .build(),
                // Listings filtered by status (`?status=PENDING`).
                IndexModel::builder()
                    .keys(doc! {"owner_id": 1, "status": 1, "created_at": -1})
                    .build(),
                IndexModel::builder()
                    .keys(doc! {"property_id": 1, "status": 1, "check_in": 1})
                    .build(),
            ],
        )
        .await?;
        Ok(Self {
            db: db.clone(),
            properties,
            bookings,
            locks: db.collection("property_locks"),
            signal,
            acceptance_turns: AcceptanceTurns::default(),
        })
    }

    fn raw_properties(&self) -> Collection<Document> {
        self.properties.clone_with_type()
    }

    fn raw_bookings(&self) -> Collection<Document> {
        self.bookings.clone_with_type()
    }

    /// One attempt at an acceptance inside `session`'s transaction.
    async fn accept_in_transaction(
        &self,
        session: &mut ClientSession,
        next: &Booking,
        expected_version: u32,
        event: &OutboxMessage,
    ) -> Result<Result<(), SaveDecisionError>, mongodb::error::Error> {
        // First write: serialises acceptances of this property.
        self.locks
            .update_one(
                doc! {"_id": &next.property_id},
                doc! {"$inc": {"acceptances": 1}},
            )
            .upsert(true)
            .session(&mut *session)
            .await?;
        let overlap = self
            .bookings
            .find_one(doc! {
                "property_id": &next.property_id,
                "status": BookingStatus::Accepted.as_str(),
                "_id": {"$ne": &next.id},
                "check_in": {"$lt": next.check_out.to_string()},
                "check_out": {"$gt": next.check_in.to_string()},
            })
            .session(&mut *session)
            .await?;
        if let Some(other) = overlap {
            return Ok(Err(SaveDecisionError::Overlap(other.id)));
        }
        let update = decision_update(next, event)
            .map_err(|e| mongodb::error::Error::custom(format!("encode: {e}")))?;
        let result = self
            .raw_bookings()
            .update_one(doc! {"_id": &next.id, "version": expected_version}, update)
            .session(&mut *session)
            .await?;
        if result.matched_count == 0 {
            return Ok(Err(SaveDecisionError::Conflict));
        }
        Ok(Ok(()))
    }

    /// Accepts `next` in a transaction, retrying write conflicts. Within
    /// this process acceptances of one property take turns first: they
    /// would only conflict with each other in the database. Across replicas
    /// the transaction alone decides.
    async fn accept(
        &self,
        next: &Booking,
        expected_version: u32,
        event: OutboxMessage,
    ) -> Result<(), SaveDecisionError> {
        let turn = self.acceptance_turns.turn(&next.property_id);
        let _turn = turn.lock().await;
        let result = self
            .accept_with_retries(next, expected_version, event)
            .await;
        self.acceptance_turns
            .release(&next.property_id, turn.clone());
        result
    }

    async fn accept_with_retries(
        &self,
        next: &Booking,
        expected_version: u32,
        event: OutboxMessage,
    ) -> Result<(), SaveDecisionError> {
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(200));
        let mut session = self
            .db
            .client()
            .start_session()
            .await
            .map_err(mongo::read_error)?;
        for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            session
                .start_transaction()
                .await
                .map_err(mongo::read_error)?;
            match self
                .accept_in_transaction(&mut session, next, expected_version, &event)
                .await
            {
                Ok(Ok(())) => loop {
                    match session.commit_transaction().await {
                        Ok(()) => {
                            self.signal.notify();
                            return Ok(());
                        }
                        Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) => continue,
                        Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) => break,
                        Err(e) => return Err(mongo::read_error(e).into()),
                    }
                },
                Ok(Err(refusal)) => {
                    let _ = session.abort_transaction().await;
                    return Err(refusal);
                }
                Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) => {
                    let _ = session.abort_transaction().await;
                }
                Err(e) => {
                    let _ = session.abort_transaction().await;
                    return Err(mongo::read_error(e).into());
                }
            }
            // Jittered, so replicas that conflicted do not retry in step.
            tokio::time::sleep(jitter(backoff.next_delay())).await;
        }
        Err(StoreError::Unavailable("acceptance kept conflicting; retry".into()).into())
    }
}

/// Half to one and a half times `d`, varying per call.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.5 + f64::from(nanos % 1000) / 1000.0)
}

/// One async lock per property with acceptances waiting, so this process
/// sends them to the database one at a time. Entries are removed when no one
/// holds or waits for them.
#[derive(Default)]
struct AcceptanceTurns(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl AcceptanceTurns {
    fn turn(&self, property_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .expect("turns lock")
            .entry(property_id.to_string())
            .or_default()
            .clone()
    }

    fn release(&self, property_id: &str, turn: Arc<tokio::sync::Mutex<()>>) {
        let mut turns = self.0.lock().expect("turns lock");
        // Held by the map and by `turn` only: no one else is waiting.
        if Arc::strong_count(&turn) == 2 {
            turns.remove(property_id);
        }
    }
}

fn with_id<T: serde::Serialize>(value: &T, id: &str) -> Result<Document, StoreError> {
    let mut d = bson::to_document(value).map_err(mongo::encode_error)?;
    d.insert("_id", id);
    Ok(d)
}

fn decision_update(next: &Booking, event: &OutboxMessage) -> Result<Document, StoreError> {
    let set = bson::to_document(next).map_err(mongo::encode_error)?;
    Ok(doc! {"$set": set, "$push": {"outbox": outbox_entry(event)?}})
}

async fn collect<T>(cursor: mongodb::Cursor<T>) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + Send + Sync + Unpin,
{
    cursor.try_collect().await.map_err(mongo::read_error)
}

#[async_trait]
impl OwnerStore for MongoOwnerStore {
    async fn insert_property(&self, p: &Property, event: OutboxMessage) -> Result<(), StoreError> {
        let mut d = with_id(p, &p.id)?;
        d.insert("outbox", vec![outbox_entry(&event)?]);
        self.raw_properties()
            .insert_one(d)
            .await
            .map_err(|e| mongo::write_error(e, "property"))?;
        self.signal.notify();
        Ok(())
    }

    async fn update_property(
        &self,
        p: &Property,
        expected_version: u64,
        event: OutboxMessage,
    ) -> Result<bool, StoreError> {
        let set = bson::to_document(p).map_err(mongo::encode_error)?;
        let result = self
            .raw_properties()
            .update_one(
                doc! {"_id": &p.id, "version": expected_version as i64},
                doc! {"$set": set, "$push": {"outbox": outbox_entry(&event)?}},
            )
            .await
            .map_err(mongo::read_error)?;
        if result.matched_count == 1 {
            self.signal.notify();
        }
        Ok(result.matched_count == 1)
    }

    async fn property(&self, id: &str) -> Result<Option<Property>, StoreError> {
        self.properties
            .find_one(doc! {"_id": id})
            .await
            .map_err(mongo::read_error)
    }

    async fn properties_of(&self, owner_id: &str) -> Result<Vec<Property>, StoreError> {
        let cursor = self
            .properties
            .find(doc! {"owner_id": owner_id})
            .with_options(
                FindOptions::builder()
                    .sort(doc! {"created_at": -1, "_id": -1})
                    .build(),
            )
            .await
            .map_err(mongo::read_error)?;
        collect(cursor).await
    }

    async fn properties_by_ids(&self, ids: &[String]) -> Result<Vec<Property>, StoreError> {
        let cursor = self
            .properties
            .find(doc! {"_id": {"$in": ids}})
            .await
            .map_err(mongo::read_error)?;
        collect(cursor).await
    }

    async fn insert_bookings(&self, bs: &[Booking]) -> Result<(), StoreError> {
        if bs.is_empty() {
            return Ok(());
        }
        let documents = bs
            .iter()
            .map(|b| with_id(b, &b.id))
            .collect::<Result<Vec<_>, _>>()?;
        // Unordered: a redelivered booking (duplicate id) does not stop the rest.
        match self
            .raw_bookings()
            .insert_many(documents)
            .ordered(false)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if mongo::is_duplicate_key(&e) => Ok(()),
            Err(e) => Err(mongo::read_error(e)),
        }
    }

    async fn insert_booking(&self, b: &Booking) -> Result<bool, StoreError> {
        match self.raw_bookings().insert_one(with_id(b, &b.id)?).await {
            Ok(_) => Ok(true),
            Err(e) if mongo::is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(mongo::read_error(e)),
        }
    }

    async fn booking(&self, id: &str) -> Result<Option<Booking>, StoreError> {
        self.bookings
            .find_one(doc! {"_id": id})
            .await
            .map_err(mongo::read_error)
    }

    async fn bookings_of(
        &self,
        owner_id: &str,
        filter: &BookingFilter,
    ) -> Result<Vec<Booking>, StoreError> {
        let mut query = doc! {"owner_id": owner_id};
        if let Some(status) = filter.status {
            query.insert("status", status.as_str());
        }
        if let Some(property_id) = &filter.property_id {
            query.insert("property_id", property_id);
        }
        let cursor = self
            .bookings
            .find(query)
            .with_options(
                FindOptions::builder()
                    .sort(doc! {"created_at": -1, "_id": -1})
                    .build(),
            )
            .await
            .map_err(mongo::read_error)?;
        collect(cursor).await
    }

    async fn save_decision(
        &self,
        next: &Booking,
        expected_version: u32,
        event: OutboxMessage,
    ) -> Result<(), SaveDecisionError> {
        if next.status == BookingStatus::Accepted {
            return self.accept(next, expected_version, event).await;
        }
        let result = self
            .raw_bookings()
            .update_one(
                doc! {"_id": &next.id, "version": expected_version},
                decision_update(next, &event)?,
            )
            .await
            .map_err(mongo::read_error)?;
        if result.matched_count == 0 {
            return Err(SaveDecisionError::Conflict);
        }
        self.signal.notify();
        Ok(())
    }
}

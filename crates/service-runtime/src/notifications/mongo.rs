//! [`MongoNotificationStore`]: notifications in MongoDB, their positions
//! taken from a shared counter.

use std::sync::Arc;

use async_trait::async_trait;
use bson::doc;
use events::{EventId, UserId};
use mongodb::{options::ReturnDocument, Collection, Database, IndexModel};
use tokio::sync::Notify;

use super::{InboxEntry, Notification, NotificationStore, LIST};
use crate::{
    mongo,
    paging::{Page, PageRequest},
    store::StoreError,
};

/// The counter document positions are taken from (in `sequences`).
const POSITION_COUNTER: &str = "notifications";

/// Notifications in MongoDB (`notifications`, `_id` = event id, `position`
/// from the `sequences` counter).
pub struct MongoNotificationStore {
    coll: Collection<Notification>,
    counters: Collection<bson::Document>,
    written: Arc<Notify>,
}

impl MongoNotificationStore {
    /// Opens the collection and makes sure its indexes exist: a
    /// recipient's notifications in list order (`_id` breaks ties), so a
    /// page is a bounded index walk whatever the cursor; every entry by
    /// position (the watcher) and a recipient's by position (a resumed
    /// stream). Creates the position counter if there is none.
    pub async fn new(db: &Database) -> Result<Self, StoreError> {
        let coll = db.collection::<Notification>("notifications");
        mongo::ensure_indexes(
            &coll,
            vec![
                IndexModel::builder()
                    .keys(doc! {"recipient_id": 1, "created_at": -1, "_id": -1})
                    .build(),
                IndexModel::builder().keys(doc! {"position": 1}).build(),
                IndexModel::builder()
                    .keys(doc! {"recipient_id": 1, "position": 1})
                    .build(),
            ],
        )
        .await?;
        // Its predecessor without `_id`, which could not give the order alone.
        mongo::drop_superseded_indexes(&coll, &["recipient_id_1_created_at_-1"]).await?;
        let counters = db.collection::<bson::Document>("sequences");
        // Created here, once, so that writes only ever increment it: no two
        // replicas race to upsert it.
        match counters
            .insert_one(doc! {"_id": POSITION_COUNTER, "last": 0_i64})
            .await
        {
            Ok(_) => {}
            Err(e) if mongo::is_duplicate_key(&e) => {}
            Err(e) => return Err(mongo::read_error(e)),
        }
        Ok(Self {
            coll,
            counters,
            written: Arc::default(),
        })
    }

    /// Takes `n` consecutive positions; returns the first.
    async fn take_positions(&self, n: u64) -> Result<u64, StoreError> {
        let counter = self
            .counters
            .find_one_and_update(
                doc! {"_id": POSITION_COUNTER},
                doc! {"$inc": {"last": n as i64}},
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(mongo::read_error)?;
        let last = number_field(counter.as_ref(), "last")
            .ok_or_else(|| StoreError::unavailable("the position counter is missing"))?;
        Ok(last + 1 - n)
    }

    /// Fillers for the positions whose notification was already stored, so
    /// the watcher need not wait out a hole. A filler that cannot be written
    /// leaves a hole the watcher skips after its patience.
    async fn fill(&self, positions: Vec<u64>) {
        let fillers: Vec<bson::Document> = positions
            .into_iter()
            .map(|p| doc! {"_id": format!("position-filler:{p}"), "position": p as i64})
            .collect();
        if let Err(e) = self
            .coll
            .clone_with_type::<bson::Document>()
            .insert_many(fillers)
            .ordered(false)
            .await
        {
            tracing::warn!(error = %e, "cannot fill the positions of redelivered notifications");
        }
    }

    async fn find_entries(
        &self,
        filter: bson::Document,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let docs = mongo::find_all(
            self.coll
                .clone_with_type::<bson::Document>()
                .find(filter)
                .sort(doc! {"position": 1})
                .limit(limit as i64),
        )
        .await?;
        docs.into_iter().map(stored_entry).collect()
    }
}

/// An integer as stored, whatever width the server chose for it.
fn whole_number(b: &bson::Bson) -> Option<u64> {
    match b {
        bson::Bson::Int64(n) => u64::try_from(*n).ok(),
        bson::Bson::Int32(n) => u64::try_from(*n).ok(),
        bson::Bson::Double(f) if f.fract() == 0.0 && *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

/// The whole number `key` of a document read (the position counter, or an
/// entry's position), if the document was found and has one: the counter
/// and the entries are read the same way.
fn number_field(document: Option<&bson::Document>, key: &str) -> Option<u64> {
    document.and_then(|d| d.get(key)).and_then(whole_number)
}

/// A stored document as an entry: a filler has no `recipient_id`.
fn stored_entry(document: bson::Document) -> Result<InboxEntry, StoreError> {
    let position = document.get("position").and_then(whole_number).unwrap_or(0);
    let notification = if document.contains_key("recipient_id") {
        Some(bson::from_document(document).map_err(|e| mongo::decode_error("a notification", e))?)
    } else {
        None
    };
    Ok(InboxEntry {
        position,
        notification,
    })
}

#[async_trait]
impl NotificationStore for MongoNotificationStore {
    async fn add(&self, n: &Notification) -> Result<(), StoreError> {
        self.add_many(std::slice::from_ref(n)).await
    }

    async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError> {
        if ns.is_empty() {
            return Ok(());
        }
        let first = self.take_positions(ns.len() as u64).await?;
        let documents = ns
            .iter()
            .zip(first..)
            .map(|(n, position)| {
                let mut document = mongo::with_id(n, &n.id)?;
                document.insert("position", position as i64);
                Ok(document)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Unordered: one duplicate (a redelivered event) does not stop the rest.
        let result = self
            .coll
            .clone_with_type::<bson::Document>()
            .insert_many(documents)
            .ordered(false)
            .await;
        match result {
            Ok(_) => {}
            Err(e) if mongo::is_duplicate_key(&e) => {
                self.fill(duplicate_indexes(&e).map(|i| first + i as u64).collect())
                    .await
            }
            Err(e) => return Err(mongo::read_error(e)),
        }
        self.written.notify_one();
        Ok(())
    }

    async fn list(
        &self,
        recipient_id: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        mongo::find_page(
            &self.coll,
            doc! {"recipient_id": recipient_id},
            None::<bson::Document>,
            page,
            LIST,
            Notification::page_key,
        )
        .await
    }

    async fn entries_after(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        self.find_entries(doc! {"position": {"$gt": position as i64}}, limit)
            .await
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        let last = self
            .coll
            .clone_with_type::<bson::Document>()
            .find_one(doc! {"position": {"$exists": true}})
            .sort(doc! {"position": -1})
            .projection(doc! {"position": 1})
            .await
            .map_err(mongo::read_error)?;
        Ok(number_field(last.as_ref(), "position").unwrap_or(0))
    }

    /// One read of the counter document by `_id` (about half the cost of
    /// the range query on the test server).
    async fn last_taken(&self) -> Result<u64, StoreError> {
        let counter = self
            .counters
            .find_one(doc! {"_id": POSITION_COUNTER})
            .await
            .map_err(mongo::read_error)?;
        Ok(number_field(counter.as_ref(), "last").unwrap_or(0))
    }

    async fn position_of(
        &self,
        recipient_id: &UserId,
        id: &EventId,
    ) -> Result<Option<u64>, StoreError> {
        let found = self
            .coll
            .clone_with_type::<bson::Document>()
            .find_one(doc! {"_id": id, "recipient_id": recipient_id})
            .projection(doc! {"position": 1})
            .await
            .map_err(mongo::read_error)?;
        Ok(found.map(|d| d.get("position").and_then(whole_number).unwrap_or(0)))
    }

    async fn recipient_entries(
        &self,
        recipient_id: &UserId,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        self.find_entries(
            doc! {
                "recipient_id": recipient_id,
                "position": {"$gt": after as i64, "$lte": upto as i64},
            },
            limit,
        )
        .await
    }

    fn written(&self) -> Arc<Notify> {
        self.written.clone()
    }

    fn shared(&self) -> bool {
        true
    }
}

/// The indexes, in an unordered `insert_many`, of the documents refused as
/// duplicates.
fn duplicate_indexes(e: &mongodb::error::Error) -> impl Iterator<Item = usize> + '_ {
    let errors = match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => m.write_errors.as_deref().unwrap_or(&[]),
        _ => &[],
    };
    errors
        .iter()
        .filter(|w| w.code == mongo::DUPLICATE_KEY)
        .map(|w| w.index)
}

//! MongoDB plumbing shared by both services: connecting, index creation,
//! error mapping, the readiness check, and the outbox adapter that relays the
//! `outbox` arrays embedded in aggregate documents.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bson::{doc, Document};
use futures::TryStreamExt;
use mongodb::{
    error::{Error, ErrorKind, WriteFailure},
    options::{ClientOptions, IndexOptions},
    Client, Collection, Database, IndexModel,
};
use uuid::Uuid;

mod insert_batcher;

pub use insert_batcher::{InsertBatcher, Inserted};

use crate::{
    http::ReadinessCheck,
    outbox::{OutboxMessage, OutboxSignal, OutboxStore},
    store::StoreError,
};

/// How long an operation waits for a reachable server before failing (and
/// the caller answering 503 or retrying), instead of the driver's 30 s.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `uri` and returns the service's own database.
pub async fn connect(uri: &str, database: &str, app_name: &str) -> Result<Database, StoreError> {
    let mut options = ClientOptions::parse(uri)
        .await
        .map_err(|e| StoreError::Unavailable(format!("invalid MONGODB_URI: {e}")))?;
    options
        .server_selection_timeout
        .get_or_insert(SERVER_SELECTION_TIMEOUT);
    options.app_name.get_or_insert(app_name.to_string());
    let client = Client::with_options(options).map_err(read_error)?;
    Ok(client.database(database))
}

/// Options for a unique index.
pub fn unique() -> IndexOptions {
    IndexOptions::builder().unique(true).build()
}

/// Creates indexes (a no-op when they exist).
pub async fn ensure_indexes<T: Send + Sync>(
    collection: &Collection<T>,
    indexes: Vec<IndexModel>,
) -> Result<(), StoreError> {
    collection
        .create_indexes(indexes)
        .await
        .map(|_| ())
        .map_err(read_error)
}

/// The server's code for a write refused by a unique index.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Whether a write failed on a unique index.
pub fn is_duplicate_key(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().all(|w| w.code == DUPLICATE_KEY)),
        _ => e.to_string().contains("E11000"),
    }
}

/// Maps a failed write: duplicates become [`StoreError::Duplicate`] (`what`
/// names the thing for the message), everything else is transient.
pub fn write_error(e: Error, what: &str) -> StoreError {
    if is_duplicate_key(&e) {
        StoreError::Duplicate(what.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

/// Maps a failed read: always transient.
pub fn read_error(e: Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A value that cannot be encoded is a bug, reported like an outage so
/// nothing half-done is acknowledged.
pub fn encode_error(e: bson::ser::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot encode document: {e}"))
}

/// Readiness: the server answers `ping`.
pub struct MongoReadiness {
    db: Database,
}

impl MongoReadiness {
    pub fn new(db: &Database) -> Self {
        Self { db: db.clone() }
    }
}

#[async_trait]
impl ReadinessCheck for MongoReadiness {
    fn name(&self) -> &'static str {
        "mongodb"
    }

    async fn check(&self) -> Result<(), String> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The outbox of a MongoDB-backed service: every aggregate document may carry
/// an `outbox` array of [`OutboxMessage`]s pushed in the same update as the
/// state change (one atomic single-document write, no transaction needed).
///
/// Only one replica relays at a time, holding a lease in `outbox_leases`, so
/// events of one aggregate are published in order and not twice in normal
/// operation; when the holder dies, another replica takes over after the TTL.
pub struct MongoOutbox {
    collections: Vec<Collection<Document>>,
    signal: OutboxSignal,
    /// When every collection was last looked at; see [`FULL_SWEEP`].
    last_full_sweep: Mutex<Option<Instant>>,
    leases: Collection<Document>,
    lease_name: String,
    holder: String,
    held_until: Mutex<Option<Instant>>,
    /// Which of `collections` each event of the last `pending` batch came
    /// from, so `mark_published` updates only those.
    origins: Mutex<HashMap<String, usize>>,
}

/// Longest time between two looks at every outbox collection. In between,
/// the relay looks only where this process's writes said they added events;
/// the full look finds other replicas' events and those left by a previous
/// lease holder.
const FULL_SWEEP: Duration = Duration::from_secs(1);

/// How long a relay lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// The field aggregates keep their pending events in.
pub const OUTBOX_FIELD: &str = "outbox";

impl MongoOutbox {
    /// Relays the outboxes of `collections` of `db`, woken by `signal`.
    /// Creates the index that finds documents with pending events without
    /// scanning the collection.
    pub async fn new(
        db: &Database,
        collections: &[&str],
        service: &str,
        signal: OutboxSignal,
    ) -> Result<Self, StoreError> {
        let mut colls = Vec::new();
        for name in collections {
            let coll = db.collection::<Document>(name);
            ensure_indexes(
                &coll,
                vec![IndexModel::builder()
                    .keys(doc! {"outbox.event_id": 1})
                    .options(IndexOptions::builder().sparse(true).build())
                    .build()],
            )
            .await?;
            colls.push(coll);
        }
        Ok(Self {
            collections: colls,
            signal,
            last_full_sweep: Mutex::new(None),
            leases: db.collection("outbox_leases"),
            lease_name: format!("{service}-relay"),
            holder: Uuid::new_v4().to_string(),
            held_until: Mutex::new(None),
            origins: Mutex::default(),
        })
    }

    /// Takes or renews the relay lease; renews only when a third of it is used.
    async fn hold_lease(&self) -> Result<bool, StoreError> {
        let now = Instant::now();
        if let Some(until) = *self.held_until.lock().expect("lease lock") {
            if until > now + LEASE_TTL * 2 / 3 {
                return Ok(true);
            }
        }
        let db_now = bson::DateTime::now();
        let expires =
            bson::DateTime::from_millis(db_now.timestamp_millis() + LEASE_TTL.as_millis() as i64);
        let result = self
            .leases
            .update_one(
                doc! {"_id": &self.lease_name, "$or": [{"holder": &self.holder}, {"expires_at": {"$lt": db_now}}]},
                doc! {"$set": {"holder": &self.holder, "expires_at": expires}},
            )
            .upsert(true)
            .await;
        let held = match result {
            Ok(_) => true,
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => return Err(read_error(e)),
        };
        // Keep a safety margin below the stored expiry for clock drift.
        *self.held_until.lock().expect("lease lock") =
            held.then(|| now + LEASE_TTL - Duration::from_secs(2));
        Ok(held)
    }
}

#[async_trait]
impl OutboxStore for MongoOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        if !self.hold_lease().await? {
            return Ok(Vec::new());
        }
        let written = self.signal.take_written();
        let full = {
            let mut last = self.last_full_sweep.lock().expect("sweep lock");
            let due = written.is_empty() || last.is_none_or(|at| at.elapsed() >= FULL_SWEEP);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        let mut messages = Vec::new();
        let mut origins = HashMap::new();
        for (index, coll) in self.collections.iter().enumerate() {
            if messages.len() >= limit {
                break;
            }
            if !full && !written.contains(&coll.name()) {
                continue;
            }
            let docs: Vec<Document> = coll
                .find(doc! {"outbox.event_id": {"$exists": true}})
                .projection(doc! {"outbox": 1})
                .limit((limit - messages.len()) as i64)
                .await
                .map_err(read_error)?
                .try_collect()
                .await
                .map_err(read_error)?;
            for d in docs {
                let Ok(entries) = d.get_array(OUTBOX_FIELD) else {
                    continue;
                };
                // A document may hold several events: take them from the
                // front (write order) and stop at `limit`; the rest stay for
                // the next batch.
                for entry in entries.iter().take(limit - messages.len()) {
                    match bson::from_bson::<OutboxMessage>(entry.clone()) {
                        Ok(m) => {
                            origins.insert(m.event_id.clone(), index);
                            messages.push(m)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "unreadable outbox entry left in place")
                        }
                    }
                }
            }
        }
        *self.origins.lock().expect("origins lock") = origins;
        Ok(messages)
    }

    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        // Group by collection; an event of unknown origin is looked for in all.
        let mut by_collection = vec![Vec::new(); self.collections.len()];
        {
            let origins = self.origins.lock().expect("origins lock");
            for id in event_ids {
                match origins.get(id) {
                    Some(&index) => by_collection[index].push(id),
                    None => by_collection.iter_mut().for_each(|ids| ids.push(id)),
                }
            }
        }
        for (coll, ids) in self.collections.iter().zip(by_collection) {
            if ids.is_empty() {
                continue;
            }
            coll.update_many(
                doc! {"outbox.event_id": {"$in": &ids}},
                doc! {"$pull": {"outbox": {"event_id": {"$in": &ids}}}},
            )
            .await
            .map_err(read_error)?;
        }
        Ok(())
    }

    async fn release(&self) {
        let held = self.held_until.lock().expect("lease lock").take().is_some();
        if held {
            let _ = self
                .leases
                .update_one(
                    doc! {"_id": &self.lease_name, "holder": &self.holder},
                    doc! {"$set": {"expires_at": bson::DateTime::from_millis(0)}},
                )
                .await;
        }
    }
}

/// Encodes an outbox message for `$push`.
pub fn outbox_entry(message: &OutboxMessage) -> Result<bson::Bson, StoreError> {
    bson::to_bson(message).map_err(encode_error)
}

//! Rebuilding traveler-service's read models from the topics that feed them,
//! while the service keeps serving.
//!
//! - `catalog`: `property-listings` (compacted: the latest snapshot of every
//!   property) is replayed from the beginning into a fresh collection through
//!   traveler-service's own consumer code; the fresh collection is then
//!   renamed over the live one in one step, and the events that arrived
//!   meanwhile are applied to it. The catalog is written only by that
//!   consumer, so nothing the service wrote is lost in the swap: whatever it
//!   applied to the old collection was on the topic before the swap, and is
//!   in the catch-up.
//! - `bookings`: the traveler's bookings collection is also where bookings
//!   are created and where their unpublished events wait, so it is never
//!   replaced wholesale (a booking acknowledged during the swap would be
//!   lost). Instead the status mirror is recomputed in a fresh collection:
//!   a copy of every booking as requested, with `booking-updates` replayed
//!   from the beginning through the consumer's version-guarded update; then
//!   each live booking whose status differs is corrected in place (guarded
//!   by what was read, so a decision the service applies meanwhile wins),
//!   and the events that arrived meanwhile are applied again.
//!
//! Stopped (Ctrl-C) before the swap, a rebuild drops its fresh collection
//! and leaves the live one as it was; once the swap began it finishes.

use std::{collections::HashMap, sync::Arc};

use bson::{doc, Document};
use events::{BookingStatus, BookingUpdateEvent, PropertyEvent};
use futures::TryStreamExt;
use mongodb::{options::FindOptions, Collection, Database};
use serde::Serialize;
use service_runtime::{messaging::EventHandler, outbox::OutboxSignal};
use tokio_util::sync::CancellationToken;
use traveler_service::{
    consumer::PropertyListingsHandler,
    listing_cache::ListingCache,
    store::{MongoTravelerStore, TravelerStore, BOOKINGS, CATALOG},
};

use crate::{
    config::Connection,
    error::{CtlError, CtlResult},
    output::{Progress, Report},
    topic_reader::{Start, TopicReader},
};

/// How many status changes are applied in one round trip.
const BATCH: usize = 200;

/// Documents in a collection, in all and per state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub documents: u64,
    /// Catalog: `active` / `inactive`; bookings: per status.
    pub by_state: Vec<(String, u64)>,
}

/// What a rebuild did.
#[derive(Debug, Serialize)]
pub struct Rebuilt {
    pub read_model: &'static str,
    pub database: String,
    pub topic: String,
    /// Events replayed into the fresh collection.
    pub events_replayed: u64,
    /// Events that could not be decoded (the service dead-letters them too).
    pub events_skipped: u64,
    /// Events that arrived during the rebuild, applied after the swap.
    pub events_caught_up: u64,
    /// Bookings only: live documents corrected in place.
    pub documents_corrected: Option<u64>,
    pub before: Counts,
    pub after: Counts,
}

impl Report for Rebuilt {
    fn text(&self) -> String {
        let counts = |c: &Counts| {
            let parts: Vec<String> = c.by_state.iter().map(|(k, n)| format!("{k} {n}")).collect();
            format!("{} documents ({})", c.documents, parts.join(", "))
        };
        let mut out = format!(
            "rebuilt {} in database {} from {}\n  events replayed: {} ({} undecodable, skipped); caught up after the swap: {}\n",
            self.read_model,
            self.database,
            self.topic,
            self.events_replayed,
            self.events_skipped,
            self.events_caught_up
        );
        if let Some(n) = self.documents_corrected {
            out += &format!("  bookings corrected: {n}\n");
        }
        out += &format!(
            "  before: {}\n  after:  {}\n",
            counts(&self.before),
            counts(&self.after)
        );
        out
    }
}

/// A fresh collection's name: never one in use.
fn fresh_name(base: &str) -> String {
    format!(
        "{base}_rebuild_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn count(coll: &Collection<Document>, filter: Document) -> CtlResult<u64> {
    coll.count_documents(filter)
        .await
        .map_err(|e| CtlError::unavailable(format!("counting {}", coll.name()), e))
}

/// Counts per state; `documents` is their sum, so the figures agree with
/// each other even while the service writes.
fn counts(by_state: Vec<(String, u64)>) -> Counts {
    Counts {
        documents: by_state.iter().map(|(_, n)| n).sum(),
        by_state,
    }
}

async fn catalog_counts(coll: &Collection<Document>) -> CtlResult<Counts> {
    Ok(counts(vec![
        ("active".into(), count(coll, doc! {"active": true}).await?),
        (
            "inactive".into(),
            count(coll, doc! {"active": false}).await?,
        ),
    ]))
}

async fn booking_counts(coll: &Collection<Document>) -> CtlResult<Counts> {
    let mut by_state = Vec::new();
    for status in [
        BookingStatus::Pending,
        BookingStatus::Accepted,
        BookingStatus::Rejected,
        BookingStatus::Cancelled,
    ] {
        let n = count(coll, doc! {"status": status.as_str()}).await?;
        by_state.push((status.as_str().to_string(), n));
    }
    Ok(counts(by_state))
}

async fn drop_quietly(coll: &Collection<Document>) {
    if let Err(e) = coll.drop().await {
        eprintln!(
            "bookingctl: could not drop {}: {e}; drop it by hand",
            coll.name()
        );
    }
}

async fn store(db: &Database, catalog: &str, bookings: &str) -> CtlResult<MongoTravelerStore> {
    MongoTravelerStore::with_collections(db, catalog, bookings, OutboxSignal::default())
        .await
        .map_err(|e| CtlError::unavailable("preparing the collections", e))
}

/// What a replay did: (events replayed, events skipped, the end offsets it
/// read up to).
type Replayed = (u64, u64, HashMap<i32, i64>);

/// One topic read for a rebuild from a start to the end known at open, with
/// the counts its progress reports: the catalog and the bookings replays
/// read, stop and report alike.
struct Replay<'a> {
    reader: TopicReader,
    stop: Option<&'a CancellationToken>,
    total: u64,
    progress: Progress,
    replayed: u64,
    skipped: u64,
}

/// Which pass of a rebuild a replay is.
enum Pass<'a> {
    /// From the beginning into the fresh collection, interrupted if `stop`
    /// fires (it is before the swap).
    Full(&'a CancellationToken),
    /// After the swap, from the ends the full pass read up to: it finishes
    /// whatever happens to `stop`.
    CatchUp(HashMap<i32, i64>),
}

impl<'a> Replay<'a> {
    /// The `pass` over the catalog topic.
    async fn catalog(conn: &Connection, pass: Pass<'a>) -> CtlResult<Self> {
        Self::open(conn, &conn.property_topic, "catalog", pass).await
    }

    /// The `pass` over the booking updates topic.
    async fn updates(conn: &Connection, pass: Pass<'a>) -> CtlResult<Self> {
        Self::open(conn, &conn.response_topic, "bookings", pass).await
    }

    /// The `pass` over `topic`, its progress reported as `rebuild {what}`.
    async fn open(conn: &Connection, topic: &str, what: &str, pass: Pass<'a>) -> CtlResult<Self> {
        let (start, stop) = match pass {
            Pass::Full(stop) => (Start::Beginning, Some(stop)),
            Pass::CatchUp(ends) => (Start::At(ends), None),
        };
        let reader = TopicReader::open(conn.brokers()?, topic, start).await?;
        Ok(Self {
            total: reader.remaining(),
            progress: Progress::new(format!("rebuild {what}: {topic}")),
            reader,
            stop,
            replayed: 0,
            skipped: 0,
        })
    }

    /// The next message before the reader's end, or an interruption if this
    /// is a full pass and `stop` fires first.
    async fn next(&mut self) -> CtlResult<Option<crate::topic_reader::Record>> {
        match self.stop {
            Some(stop) => tokio::select! {
                next = self.reader.next_until_end() => next,
                _ = stop.cancelled() => Err(CtlError::Interrupted("rebuild stopped".into())),
            },
            None => self.reader.next_until_end().await,
        }
    }

    /// Reports the events replayed and skipped so far (at most once a second).
    fn tick(&mut self) {
        self.progress.tick(self.replayed + self.skipped, self.total);
    }

    fn finish(self) -> Replayed {
        (self.replayed, self.skipped, self.reader.ends())
    }
}

/// Replays the catalog topic into `handler` until the end known at open.
async fn replay_listings(
    mut replay: Replay<'_>,
    handler: &PropertyListingsHandler,
) -> CtlResult<Replayed> {
    while let Some(record) = replay.next().await? {
        match events::decode::<PropertyEvent>(&record.value) {
            Ok(event) => {
                handler.handle(event).await.map_err(|e| {
                    CtlError::unavailable(format!("applying offset {}", record.offset), e)
                })?;
                replay.replayed += 1;
            }
            Err(_) => replay.skipped += 1,
        }
        replay.tick();
    }
    Ok(replay.finish())
}

/// `rebuild catalog` (see the module comment).
pub async fn catalog(conn: &Connection, stop: &CancellationToken) -> CtlResult<Rebuilt> {
    let db = conn.database(&conn.traveler_database).await?;
    let live = db.collection::<Document>(CATALOG);
    let before = catalog_counts(&live).await?;
    let fresh_name = fresh_name(CATALOG);
    let fresh = db.collection::<Document>(&fresh_name);
    let handler = PropertyListingsHandler {
        store: Arc::new(store(&db, &fresh_name, BOOKINGS).await?),
        cache: Arc::new(ListingCache::default()),
    };
    let replaying = async {
        let replay = Replay::catalog(conn, Pass::Full(stop)).await?;
        replay_listings(replay, &handler).await
    };
    let (replayed, skipped, ends) = match replaying.await {
        Ok(done) => done,
        Err(e) => {
            drop_quietly(&fresh).await;
            return Err(e);
        }
    };
    if stop.is_cancelled() {
        drop_quietly(&fresh).await;
        return Err(CtlError::Interrupted(
            "rebuild stopped before the swap".into(),
        ));
    }
    // From here on the rebuild finishes whatever happens to `stop`.
    let rename = doc! {
        "renameCollection": format!("{}.{fresh_name}", db.name()),
        "to": format!("{}.{CATALOG}", db.name()),
        "dropTarget": true,
    };
    if let Err(e) = db.client().database("admin").run_command(rename).await {
        drop_quietly(&fresh).await;
        return Err(CtlError::unavailable("swapping in the rebuilt catalog", e));
    }
    let live_handler = PropertyListingsHandler {
        store: Arc::new(store(&db, CATALOG, BOOKINGS).await?),
        cache: Arc::new(ListingCache::default()),
    };
    let (caught_up, late_skipped, _) = replay_listings(
        Replay::catalog(conn, Pass::CatchUp(ends)).await?,
        &live_handler,
    )
    .await?;
    Ok(Rebuilt {
        read_model: "catalog",
        database: db.name().to_string(),
        topic: conn.property_topic.clone(),
        events_replayed: replayed,
        events_skipped: skipped + late_skipped,
        events_caught_up: caught_up,
        documents_corrected: None,
        before,
        after: catalog_counts(&live).await?,
    })
}

/// The fields of a booking's status mirror, as stored.
#[derive(Debug, Clone, PartialEq)]
struct Mirror {
    status: Option<String>,
    version: i64,
    reason: Option<String>,
}

impl Mirror {
    fn of(d: &Document) -> Self {
        Self {
            status: d.get_str("status").ok().map(str::to_string),
            version: d
                .get_i64("version")
                .or_else(|_| d.get_i32("version").map(i64::from))
                .unwrap_or(0),
            reason: d.get_str("status_reason").ok().map(str::to_string),
        }
    }
}

/// Replays the updates topic into `store`'s bookings, in batches, until the
/// end known at open.
async fn replay_updates(mut replay: Replay<'_>, store: &MongoTravelerStore) -> CtlResult<Replayed> {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = replay.next().await?;
        let end = next.is_none();
        if let Some(record) = next {
            match events::decode::<BookingUpdateEvent>(&record.value) {
                Ok(event) => {
                    let BookingUpdateEvent::StatusChanged(change) = event.payload;
                    batch.push(change);
                }
                Err(_) => replay.skipped += 1,
            }
        }
        if batch.len() >= BATCH || (end && !batch.is_empty()) {
            store
                .apply_statuses(&batch)
                .await
                .map_err(|e| CtlError::unavailable("applying status changes", e))?;
            replay.replayed += batch.len() as u64;
            batch.clear();
        }
        replay.tick();
        if end {
            break;
        }
    }
    Ok(replay.finish())
}

/// Copies every live booking into `fresh` as it was requested: status
/// PENDING, no decision applied. Their pending events and idempotency keys
/// stay behind: the copy only computes statuses.
async fn copy_as_requested(
    live: &Collection<Document>,
    fresh: &Collection<Document>,
) -> CtlResult<u64> {
    let mut cursor = live
        .find(doc! {})
        .with_options(
            FindOptions::builder()
                .projection(doc! {"outbox": 0, "idempotency_key": 0, "request_fingerprint": 0})
                .build(),
        )
        .await
        .map_err(|e| CtlError::unavailable("reading the bookings", e))?;
    let mut copied = 0;
    let mut chunk = Vec::with_capacity(BATCH);
    loop {
        let next = cursor
            .try_next()
            .await
            .map_err(|e| CtlError::unavailable("reading the bookings", e))?;
        let end = next.is_none();
        if let Some(mut d) = next {
            let created = d.get("created_at").cloned().unwrap_or(bson::Bson::Null);
            d.insert("status", BookingStatus::Pending.as_str());
            d.insert("status_reason", bson::Bson::Null);
            d.insert("version", 0_i64);
            d.insert("updated_at", created);
            chunk.push(d);
        }
        if chunk.len() >= BATCH || (end && !chunk.is_empty()) {
            copied += chunk.len() as u64;
            fresh
                .insert_many(std::mem::take(&mut chunk))
                .await
                .map_err(|e| CtlError::unavailable("copying the bookings", e))?;
        }
        if end {
            return Ok(copied);
        }
    }
}

/// Sets each live booking's mirror to the rebuilt one where they differ,
/// guarded by the live values read, so a change the service applied since
/// is kept (the catch-up then settles it). Returns how many were corrected.
async fn correct_in_place(
    live: &Collection<Document>,
    fresh: &Collection<Document>,
) -> CtlResult<u64> {
    let read = |what: &'static str| move |e| CtlError::unavailable(what, e);
    let current: HashMap<String, Mirror> = live
        .find(doc! {})
        .projection(doc! {"status": 1, "version": 1, "status_reason": 1})
        .await
        .map_err(read("reading the bookings"))?
        .try_collect::<Vec<Document>>()
        .await
        .map_err(read("reading the bookings"))?
        .into_iter()
        .filter_map(|d| Some((d.get_str("_id").ok()?.to_string(), Mirror::of(&d))))
        .collect();
    let mut cursor = fresh
        .find(doc! {})
        .await
        .map_err(read("reading the rebuilt bookings"))?;
    let mut corrected = 0;
    while let Some(rebuilt) = cursor
        .try_next()
        .await
        .map_err(read("reading the rebuilt bookings"))?
    {
        let Ok(id) = rebuilt.get_str("_id") else {
            continue;
        };
        let want = Mirror::of(&rebuilt);
        let Some(have) = current.get(id) else {
            continue;
        };
        if *have == want {
            continue;
        }
        let guard = doc! {
            "_id": id,
            "status": have.status.clone(),
            "version": have.version,
            "status_reason": have.reason.clone(),
        };
        let set = doc! {
            "status": want.status,
            "version": want.version,
            "status_reason": want.reason,
            "updated_at": rebuilt.get("updated_at").cloned().unwrap_or(bson::Bson::Null),
        };
        let result = live
            .update_one(guard, doc! {"$set": set})
            .await
            .map_err(read("correcting a booking"))?;
        corrected += result.modified_count;
    }
    Ok(corrected)
}

/// `rebuild bookings` (see the module comment).
pub async fn bookings(conn: &Connection, stop: &CancellationToken) -> CtlResult<Rebuilt> {
    let db = conn.database(&conn.traveler_database).await?;
    let live = db.collection::<Document>(BOOKINGS);
    let before = booking_counts(&live).await?;
    let fresh_name = fresh_name(BOOKINGS);
    let fresh = db.collection::<Document>(&fresh_name);
    // The watermarks first: every decision the copy below reflects is then
    // before them, and every later one is caught up after the correction.
    let building = async {
        let reader = TopicReader::open(conn.brokers()?, &conn.response_topic, Start::End).await?;
        let ends = reader.ends();
        drop(reader);
        copy_as_requested(&live, &fresh).await?;
        let rebuilt = store(&db, CATALOG, &fresh_name).await?;
        let (replayed, skipped, _) =
            replay_updates(Replay::updates(conn, Pass::Full(stop)).await?, &rebuilt).await?;
        Ok::<_, CtlError>((replayed, skipped, ends))
    };
    let (replayed, skipped, ends) = match building.await {
        Ok(done) if !stop.is_cancelled() => done,
        Ok(_) => {
            drop_quietly(&fresh).await;
            return Err(CtlError::Interrupted(
                "rebuild stopped before the swap".into(),
            ));
        }
        Err(e) => {
            drop_quietly(&fresh).await;
            return Err(e);
        }
    };
    // From here on the rebuild finishes whatever happens to `stop`.
    let corrected = correct_in_place(&live, &fresh).await;
    drop_quietly(&fresh).await;
    let corrected = corrected?;
    let live_store = store(&db, CATALOG, BOOKINGS).await?;
    let (caught_up, late_skipped, _) = replay_updates(
        Replay::updates(conn, Pass::CatchUp(ends)).await?,
        &live_store,
    )
    .await?;
    Ok(Rebuilt {
        read_model: "bookings",
        database: db.name().to_string(),
        topic: conn.response_topic.clone(),
        events_replayed: replayed,
        events_skipped: skipped + late_skipped,
        events_caught_up: caught_up,
        documents_corrected: Some(corrected),
        before,
        after: booking_counts(&live).await?,
    })
}

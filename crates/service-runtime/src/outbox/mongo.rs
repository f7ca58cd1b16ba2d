//! The outbox adapter for MongoDB: relays the `outbox` arrays embedded in
//! aggregate documents, publishing what writes hand over and sweeping for
//! the rest, and removes delivered events in small batches.

mod write;

pub use write::{OutboxWriteError, OutboxWrites};

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bson::{doc, Document};
use events::EventId;
use futures::TryStreamExt;
use mongodb::{
    options::{IndexOptions, ReturnDocument},
    Collection, Database, IndexModel,
};
use uuid::Uuid;

use super::{
    message::{Backlog, OutboxMessage, OutboxStore},
    signal::OutboxSignal,
};
use crate::{
    mongo::{encode_error, ensure_indexes, is_duplicate_key, read_error},
    store::StoreError,
};

/// The outbox of a MongoDB-backed service: every aggregate document may carry
/// an `outbox` array of [`OutboxMessage`]s pushed in the same update as the
/// state change (one atomic single-document write, no transaction needed).
///
/// The relay publishes what this process's writes hand it
/// ([`OutboxSignal::committed`]) without reading it back, and sweeps the
/// collections for everything else: other replicas' events, a previous
/// process's leftovers and events the hand-over queue dropped. How often
/// is adaptive ([`SweepPace`]): every [`FULL_SWEEP`] while writes keep
/// handing events over and every [`MIN_SWEEP_GAP`] when woken with nothing
/// handed over, doubling after each sweep that found nothing up to
/// [`MAX_SWEEP_GAP`], and back to the start as soon as one finds something.
/// A sweep is also made at once after a batch was not (fully) delivered and
/// when the lease was just taken. So an idle service costs a sweep per
/// collection every few seconds instead of five a second, and a replica
/// that sees other replicas' events keeps sweeping often.
///
/// Only one replica relays at a time, holding a lease in `outbox_leases`, so
/// events of one aggregate are published in order and not twice in normal
/// operation; when the holder dies, another replica takes over after the TTL.
/// The database server's clock times the lease (see [`MongoOutbox::hold_lease`]),
/// and the relay renews it while a publish is in flight
/// ([`OutboxStore::keep_lease`]).
pub struct MongoOutbox {
    collections: Vec<Collection<Document>>,
    signal: OutboxSignal,
    /// When the collections were last swept, and how often to.
    sweep_pace: Mutex<SweepPace>,
    /// Events the last two sweeps returned: a hand-over of one of them that
    /// arrives after the sweep read it is not published a second time.
    swept: Mutex<[HashSet<EventId>; 2]>,
    leases: Collection<Document>,
    lease_name: String,
    holder: String,
    /// How long the lease lasts without renewal.
    lease_ttl: Duration,
    /// Until when this process may count on the lease, by its own
    /// monotonic clock: from before it asked, so never later than the
    /// server's expiry.
    held_until: Mutex<Option<Instant>>,
    /// While this process does not hold the lease: when the relay's next
    /// batch may ask for it again ([`lease_retry`]).
    retry_lease_at: Mutex<Option<Instant>>,
    /// Whether events of the last batch returned may still be undelivered:
    /// set by a look that returned some, cleared by `mark_published` when
    /// it names them all. Set at the next look means a publish failed, and
    /// the failed events (no longer in the hand-over queue) are swept at once.
    outstanding: Mutex<bool>,
    /// Which of `collections` each event of the last `pending` batch came
    /// from, so `mark_published` updates only those.
    origins: Mutex<HashMap<EventId, usize>>,
    /// Delivered events not yet removed from their documents.
    delivered: Mutex<Delivered>,
}

/// Delivered events whose removal from the outbox is deferred, so that one
/// `$pull` per collection removes many (see [`MARK_DELAY`]).
#[derive(Default)]
struct Delivered {
    /// Event ids per collection index; `None` is "look in every collection".
    by_collection: HashMap<Option<usize>, Vec<EventId>>,
    /// The same ids, for sweeps to skip: they are delivered already.
    ids: HashSet<EventId>,
    /// When the oldest of them was delivered.
    since: Option<Instant>,
}

/// How long a delivered event may stay in its document's outbox before it is
/// removed. Removal is batched: one `$pull` per collection for many events,
/// instead of one per batch published (SecantusDB: about 1 ms for one
/// document, 0.33 ms a document for ten). If the process dies in between,
/// those events are published again by the next sweep, which consumers
/// absorb (they deduplicate by event id).
const MARK_DELAY: Duration = Duration::from_millis(100);

/// Delivered events that are removed at once, whatever their age.
const MARK_AT: usize = 16;

/// Most events one `$pull` removes. A single-threaded database server runs
/// one command at a time, so a long one stalls every request behind it:
/// 32 documents take about 12 ms on SecantusDB, 200 take 130 ms.
const MARK_CHUNK: usize = 32;

/// Time between two sweeps while writes keep handing events over and the
/// last sweep found something; it grows as [`SweepPace`] says.
const FULL_SWEEP: Duration = Duration::from_secs(1);

/// Shortest time between two sweeps when the relay looks with nothing handed
/// over (its idle poll, or a wake-up whose events an earlier look took).
const MIN_SWEEP_GAP: Duration = Duration::from_millis(200);

/// Longest time between two sweeps: how late, at worst, an event another
/// replica wrote is published after a quiet spell (measured idle: a sweep
/// per collection five times a second was most of an idle service's
/// database commands, and found nothing).
const MAX_SWEEP_GAP: Duration = Duration::from_secs(3);

/// When the next sweep is due. Each sweep that finds nothing doubles the
/// gap (from [`MIN_SWEEP_GAP`] or [`FULL_SWEEP`], up to [`MAX_SWEEP_GAP`]);
/// one that finds something resets it.
#[derive(Debug, Default)]
struct SweepPace {
    last: Option<Instant>,
    /// Sweeps in a row that found nothing.
    quiet: u32,
}

impl SweepPace {
    /// The gap after the last sweep, from `base`.
    fn gap(&self, base: Duration) -> Duration {
        let grown = base.saturating_mul(1 << self.quiet.min(8));
        grown.min(MAX_SWEEP_GAP).max(base)
    }

    /// Records a sweep made now that found `found` events.
    fn swept(&mut self, found: usize) {
        self.last = Some(Instant::now());
        self.quiet = if found == 0 {
            self.quiet.saturating_add(1)
        } else {
            0
        };
    }

    /// Makes the next look sweep, at the shortest gaps again.
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// How long the relay waits between two requests for a lease another
/// replica holds: it can only be taken once expired (or released), so
/// asking on every idle poll (five a second) buys nothing. A fifth of the
/// TTL, so a replica takes over within 1.2 TTL of the holder's death and
/// within a fifth of it after a release.
fn lease_retry(ttl: Duration) -> Duration {
    ttl / 5
}

/// How long a relay lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// The lease field that says when the server last gave or renewed the lease
/// (its `$$NOW`), beside `expires_at`.
const LEASE_CHECKED_AT: &str = "checked_at";

/// The field aggregates keep their pending events in.
pub const OUTBOX_FIELD: &str = "outbox";

/// The collection relay leases live in, one document per service.
const LEASES: &str = "outbox_leases";

/// The lease document of `service`'s relay.
fn lease_name(service: &str) -> String {
    format!("{service}-relay")
}

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
            sweep_pace: Mutex::default(),
            swept: Mutex::default(),
            leases: db.collection(LEASES),
            lease_name: lease_name(service),
            holder: Uuid::new_v4().to_string(),
            lease_ttl: LEASE_TTL,
            held_until: Mutex::new(None),
            retry_lease_at: Mutex::new(None),
            outstanding: Mutex::new(false),
            origins: Mutex::default(),
            delivered: Mutex::default(),
        })
    }

    /// The same with a lease of `ttl` instead of 10 s (tests of take-over
    /// and renewal that should not wait that long).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Takes or renews the relay lease; asks the database only once half of
    /// the TTL is left of it (a renewal every 0.3 TTL while held, 3 s by
    /// default: renewing after 0.13 TTL was most of an idle service's
    /// writes, and half the TTL still leaves the relay's renewals during a
    /// publish, every [`RelayConfig::lease_renewal`], seconds to spare).
    ///
    /// [`RelayConfig::lease_renewal`]: crate::outbox::RelayConfig::lease_renewal
    ///
    /// The database server decides, by its own clock, in one atomic update:
    /// the lease is this process's if it holds it already or if it has
    /// expired (`expires_at` before the server's `$$NOW`), and then it runs
    /// until `$$NOW` plus the TTL. No replica's clock enters, so replicas
    /// whose clocks disagree still never hold it at once. Dates are compared
    /// as milliseconds (`$toLong`): SecantusDB, the test server, compares a
    /// stored date with `$$NOW` wrongly, and real MongoDB gives the same
    /// answer either way.
    async fn hold_lease(&self) -> Result<bool, StoreError> {
        let asked = Instant::now();
        if let Some(until) = *self.held_until.lock().expect("lease lock") {
            if until > asked + self.lease_ttl / 2 {
                return Ok(true);
            }
        }
        let was_held = self
            .held_until
            .lock()
            .expect("lease lock")
            .is_some_and(|until| until > asked);
        let ttl_ms = self.lease_ttl.as_millis() as i64;
        let mine = doc! {"$or": [
            {"$eq": ["$holder", &self.holder]},
            {"$not": [{"$gt": [{"$toLong": "$expires_at"}, {"$toLong": "$$NOW"}]}]},
        ]};
        let result = self
            .leases
            .find_one_and_update(
                doc! {"_id": &self.lease_name},
                vec![
                    doc! {"$set": {"mine": mine}},
                    doc! {"$set": {
                        "holder": {"$cond": ["$mine", &self.holder, "$holder"]},
                        "expires_at": {"$cond": ["$mine", {"$add": ["$$NOW", ttl_ms]}, "$expires_at"]},
                        // Only when taken or renewed: a refused request
                        // changes nothing, so it writes nothing.
                        LEASE_CHECKED_AT: {"$cond": ["$mine", "$$NOW", format!("${LEASE_CHECKED_AT}")]},
                    }},
                    doc! {"$unset": "mine"},
                ],
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        let held = match result {
            Ok(lease) => lease.is_some_and(|l| l.get_str("holder") == Ok(self.holder.as_str())),
            // Another replica created the lease document at the same moment.
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => return Err(read_error(e)),
        };
        // Counted from before the request, with a margin: this process stops
        // relaying before the server would let another replica start.
        *self.held_until.lock().expect("lease lock") =
            held.then(|| asked + self.lease_ttl - self.lease_ttl / 5);
        *self.retry_lease_at.lock().expect("lease lock") =
            (!held).then(|| asked + lease_retry(self.lease_ttl));
        if held && !was_held {
            // Just taken: the previous holder may have left events behind.
            self.sweep_pace.lock().expect("sweep lock").reset();
        }
        Ok(held)
    }

    /// Whether the relay should skip asking for the lease now: another
    /// replica held it when this one last asked, less than [`lease_retry`] ago.
    fn lease_refused_lately(&self) -> bool {
        let held = self
            .held_until
            .lock()
            .expect("lease lock")
            .is_some_and(|until| until > Instant::now());
        !held
            && self
                .retry_lease_at
                .lock()
                .expect("lease lock")
                .is_some_and(|at| Instant::now() < at)
    }

    /// Whether this look should sweep the collections ([`SweepPace`]).
    /// Events dropped from the hand-over queue are swept for at the
    /// shortest gap.
    fn sweep_due(&self, nothing_handed: bool, dropped: bool) -> bool {
        let pace = self.sweep_pace.lock().expect("sweep lock");
        let base = if nothing_handed || dropped {
            MIN_SWEEP_GAP
        } else {
            FULL_SWEEP
        };
        let gap = if dropped { base } else { pace.gap(base) };
        pace.last.is_none_or(|at| at.elapsed() >= gap)
    }

    /// Up to `limit` events found in the collections, skipping the ones
    /// `origins` already holds (this look's hand-overs) and delivered ones,
    /// each document's in write order.
    async fn sweep(
        &self,
        limit: usize,
        origins: &mut HashMap<EventId, usize>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let delivered = self.delivered.lock().expect("delivered lock").ids.clone();
        let mut messages = Vec::new();
        for (index, coll) in self.collections.iter().enumerate() {
            if messages.len() >= limit {
                break;
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
                for entry in entries {
                    if messages.len() >= limit {
                        break;
                    }
                    match bson::from_bson::<OutboxMessage>(entry.clone()) {
                        Ok(m)
                            if origins.contains_key(&m.event_id)
                                || delivered.contains(&m.event_id) => {}
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
        Ok(messages)
    }

    /// Removes delivered events from their documents' outboxes: all of them
    /// if `now`, else only once [`MARK_DELAY`] has passed or [`MARK_AT`]
    /// are waiting. On failure they stay recorded and are tried again.
    pub async fn remove_delivered(&self, now: bool) -> Result<(), StoreError> {
        let batch = {
            let mut delivered = self.delivered.lock().expect("delivered lock");
            let due = delivered.since.is_some_and(|at| {
                now || at.elapsed() >= MARK_DELAY || delivered.ids.len() >= MARK_AT
            });
            if !due {
                return Ok(());
            }
            delivered.since = None;
            std::mem::take(&mut delivered.by_collection)
        };
        let mut by_collection: Vec<Vec<&str>> = vec![Vec::new(); self.collections.len()];
        for (origin, ids) in &batch {
            match origin {
                Some(index) => by_collection[*index].extend(ids.iter().map(EventId::as_str)),
                None => by_collection
                    .iter_mut()
                    .for_each(|c| c.extend(ids.iter().map(EventId::as_str))),
            }
        }
        let mut result = Ok(());
        for (coll, ids) in self.collections.iter().zip(by_collection) {
            if ids.is_empty() {
                continue;
            }
            for chunk in ids.chunks(MARK_CHUNK) {
                if let Err(e) = coll
                    .update_many(
                        doc! {"outbox.event_id": {"$in": chunk}},
                        doc! {"$pull": {"outbox": {"event_id": {"$in": chunk}}}},
                    )
                    .await
                {
                    result = Err(read_error(e));
                    break;
                }
            }
            if result.is_err() {
                break;
            }
        }
        let mut delivered = self.delivered.lock().expect("delivered lock");
        match result {
            Ok(()) => {
                for ids in batch.values() {
                    for id in ids {
                        delivered.ids.remove(id);
                    }
                }
            }
            // Keep them for the next try (a `$pull` of what is gone is a no-op).
            Err(_) => {
                for (origin, ids) in batch {
                    delivered
                        .by_collection
                        .entry(origin)
                        .or_default()
                        .extend(ids);
                }
                delivered.since.get_or_insert_with(Instant::now);
            }
        }
        result
    }

    /// One look for the relay: the handed-over events if `hand_over` (else
    /// none), then a sweep of the collections if due (always without
    /// `hand_over`), up to `limit` in all.
    async fn look(&self, limit: usize, hand_over: bool) -> Result<Vec<OutboxMessage>, StoreError> {
        self.remove_delivered(false).await?;
        if hand_over && self.lease_refused_lately() {
            self.signal.discard_committed();
            return Ok(Vec::new());
        }
        if !self.hold_lease().await? {
            // The replica holding the lease sweeps these up.
            self.signal.discard_committed();
            return Ok(Vec::new());
        }
        let (handed, dropped) = if hand_over {
            self.signal.take_committed(limit)
        } else {
            (Vec::new(), false)
        };
        let nothing_handed = handed.is_empty();
        let mut messages = Vec::with_capacity(handed.len());
        let mut origins = HashMap::new();
        // A hand-over behind events of its document that are not delivered
        // yet waits for the sweep, which returns them in write order.
        let mut held_back = false;
        {
            let swept = self.swept.lock().expect("swept lock");
            let delivered = self.delivered.lock().expect("delivered lock");
            for c in handed {
                let id = &c.message.event_id;
                if swept.iter().any(|ids| ids.contains(id)) {
                    continue;
                }
                if c.after.iter().any(|before| !delivered.ids.contains(before)) {
                    held_back = true;
                    continue;
                }
                let Some(index) = self
                    .collections
                    .iter()
                    .position(|coll| coll.name() == c.collection)
                else {
                    tracing::error!(
                        collection = c.collection,
                        "event handed over for a collection this outbox does not relay"
                    );
                    continue;
                };
                origins.insert(id.clone(), index);
                messages.push(c.message);
            }
        }
        // A batch returned earlier and not confirmed delivered: its events
        // left the hand-over queue, so only a sweep returns them.
        let undelivered = std::mem::take(&mut *self.outstanding.lock().expect("outstanding lock"));
        let sweep =
            !hand_over || held_back || undelivered || self.sweep_due(nothing_handed, dropped);
        if messages.len() < limit && sweep {
            let found = self.sweep(limit - messages.len(), &mut origins).await?;
            self.sweep_pace
                .lock()
                .expect("sweep lock")
                .swept(found.len());
            let mut swept = self.swept.lock().expect("swept lock");
            swept.swap(0, 1);
            swept[0] = found.iter().map(|m| m.event_id.clone()).collect();
            messages.extend(found);
        }
        *self.outstanding.lock().expect("outstanding lock") = !messages.is_empty();
        *self.origins.lock().expect("origins lock") = origins;
        Ok(messages)
    }
}

#[async_trait]
impl OutboxStore for MongoOutbox {
    /// Sweeps every collection.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.look(limit, false).await
    }

    /// Counts every collection's embedded events, whichever replica holds
    /// the relay lease (events delivered in the last [`MARK_DELAY`] may
    /// still be counted).
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let mut backlog = Backlog::default();
        for collection in &self.collections {
            let (count, oldest) = pending_in(collection).await?;
            backlog.pending += count;
            backlog.oldest = match (backlog.oldest, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(backlog)
    }

    /// What writes handed over, and a sweep when one is due.
    async fn next_batch(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.look(limit, true).await
    }

    /// Records the events as delivered; they leave their documents' outboxes
    /// within [`MARK_DELAY`] (or at once when [`MARK_AT`] are waiting),
    /// and no look returns them meanwhile.
    async fn mark_published(&self, event_ids: &[EventId]) -> Result<(), StoreError> {
        {
            let origins = self.origins.lock().expect("origins lock");
            let named: HashSet<&EventId> = event_ids.iter().collect();
            *self.outstanding.lock().expect("outstanding lock") =
                origins.keys().any(|id| !named.contains(id));
            let mut delivered = self.delivered.lock().expect("delivered lock");
            for id in event_ids {
                if delivered.ids.insert(id.clone()) {
                    delivered
                        .by_collection
                        .entry(origins.get(id).copied())
                        .or_default()
                        .push(id.clone());
                }
            }
            delivered.since.get_or_insert_with(Instant::now);
        }
        self.remove_delivered(false).await
    }

    /// Renews the lease (when a third of it is used) while the relay
    /// publishes a batch.
    async fn keep_lease(&self) -> Result<bool, StoreError> {
        self.hold_lease().await
    }

    async fn release(&self) {
        if let Err(e) = self.remove_delivered(true).await {
            tracing::warn!(error = %e, "delivered events left in the outbox; they will be published again");
        }
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

/// The ids of the events in a document's outbox, in write order: what
/// [`OutboxSignal::appended`] needs after a `$push` that returned the
/// document (a projection of `outbox.event_id` is enough).
pub fn outbox_ids(document: &Document) -> Vec<EventId> {
    document
        .get_array(OUTBOX_FIELD)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e.as_document()?.get_str("event_id").ok())
                .map(EventId::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The events embedded in `collection`'s outboxes, and when the oldest was
/// written.
async fn pending_in(
    collection: &Collection<Document>,
) -> Result<(u64, Option<chrono::DateTime<chrono::Utc>>), StoreError> {
    let docs: Vec<Document> = collection
        .find(doc! {"outbox.event_id": {"$exists": true}})
        .projection(doc! {"outbox.created_at": 1})
        .await
        .map_err(read_error)?
        .try_collect()
        .await
        .map_err(read_error)?;
    let mut count = 0;
    let mut oldest: Option<chrono::DateTime<chrono::Utc>> = None;
    for d in &docs {
        let Ok(entries) = d.get_array(OUTBOX_FIELD) else {
            continue;
        };
        for entry in entries {
            count += 1;
            let created = entry
                .as_document()
                .and_then(|e| e.get_str("created_at").ok())
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
            if let Some(created) = created {
                oldest = Some(oldest.map_or(created, |o| o.min(created)));
            }
        }
    }
    Ok((count, oldest))
}

/// Encodes an outbox message for `$push`.
pub fn outbox_entry(message: &OutboxMessage) -> Result<bson::Bson, StoreError> {
    bson::to_bson(message).map_err(encode_error)
}

/// What an operator needs to judge an outbox: how much waits, since when,
/// and which replica is (or was last) relaying it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxReport {
    /// Pending events per collection, in the order the collections were named.
    pub collections: Vec<(String, u64)>,
    /// When the oldest pending event was written.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
    /// The relay lease, if any replica ever took it.
    pub lease: Option<RelayLease>,
    /// The database server's clock when the report was made, so the lease's
    /// expiry is judged against the clock that wrote it.
    pub server_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl OutboxReport {
    /// Pending events in all collections.
    pub fn pending(&self) -> u64 {
        self.collections.iter().map(|(_, n)| n).sum()
    }
}

/// The relay lease of one service: held by `holder` until `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayLease {
    pub holder: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Reads the outbox of `service` in `db` without touching it: the events
/// still embedded in `collections` (delivered ones leave within
/// [`MARK_DELAY`], so a few may be counted that are already out) and the
/// relay lease. Lives beside the relay because it reads the relay's own
/// fields and lease document.
pub async fn outbox_report(
    db: &Database,
    collections: &[&str],
    service: &str,
) -> Result<OutboxReport, StoreError> {
    let mut report = OutboxReport {
        collections: Vec::new(),
        oldest: None,
        lease: None,
        server_time: None,
    };
    for name in collections {
        let (count, oldest) = pending_in(&db.collection::<Document>(name)).await?;
        if let Some(oldest) = oldest {
            report.oldest = Some(report.oldest.map_or(oldest, |o| o.min(oldest)));
        }
        report.collections.push((name.to_string(), count));
    }
    let lease = db
        .collection::<Document>(LEASES)
        .find_one(doc! {"_id": lease_name(service)})
        .await
        .map_err(read_error)?;
    report.lease = lease.and_then(|l| {
        Some(RelayLease {
            holder: l.get_str("holder").ok()?.to_string(),
            expires_at: l.get_datetime("expires_at").ok()?.to_chrono(),
        })
    });
    let hello = db
        .run_command(doc! {"hello": 1})
        .await
        .map_err(read_error)?;
    report.server_time = hello.get_datetime("localTime").ok().map(|t| t.to_chrono());
    Ok(report)
}

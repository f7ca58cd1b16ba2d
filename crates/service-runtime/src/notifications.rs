//! Notifications: what a user is told about their bookings.
//!
//! Both services keep notifications the same way (one per event, keyed by the
//! event id so a redelivered event does not notify twice) and serve them at
//! `GET /notifications`, newest first, a page at a time, and live at
//! `GET /notifications/stream` (server-sent events, see [`stream`]).
//!
//! Besides its place in the list (`created_at`, the time of the event), every
//! notification written gets a *position*: a number from one counter shared
//! by all replicas, taken just before the write. Positions give the order in
//! which entries were written, which is what a live stream follows and
//! resumes from ([`watcher`] explains how holes in it are handled).

pub mod hub;
pub mod stream;
pub mod watcher;

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use axum::{
    extract::{FromRef, State},
    Json,
};
use bson::doc;
use chrono::{DateTime, Utc};
use events::BookingStatus;
use futures::TryStreamExt;
use mongodb::{options::ReturnDocument, Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, RwLock};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery},
    identity::IdentityState,
    mongo,
    paging::{After, List, Page, PageRequest},
    store::StoreError,
};

/// One notification. `id` is the id of the event that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a5e0-7a1c-7cc2-9d7e-2f1d3c4b5a69", "recipient_id": "0193a5d0-1111-7000-8000-000000000001", "kind": "status_changed", "booking_id": "0193a5df-2222-7000-8000-000000000002", "status": "ACCEPTED", "reason": null, "message": "Your booking at Sea View was accepted.", "created_at": "2026-11-25T02:04:41.123Z"}))]
pub struct Notification {
    pub id: String,
    pub recipient_id: String,
    /// `booking_requested`, `cancellation_requested` or `status_changed`.
    pub kind: String,
    pub booking_id: String,
    pub status: BookingStatus,
    pub reason: Option<String>,
    pub message: String,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

/// The paged list of a user's notifications, newest first.
pub const LIST: List = List::newest_first("notifications");

impl Notification {
    /// Its place in [`LIST`].
    pub fn page_key(&self) -> After {
        After {
            key: events::timestamp::format(&self.created_at),
            id: self.id.clone(),
        }
    }
}

/// One position of the write order: the notification written there, or
/// `None` where the write found the notification already stored (a
/// redelivered event) and left a filler, so the position is not a hole.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    /// From 1, one counter for every recipient.
    pub position: u64,
    /// `None` for a filler.
    pub notification: Option<Notification>,
}

/// Where notifications live.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Adds `n` unless one with the same id exists (idempotent).
    async fn add(&self, n: &Notification) -> Result<(), StoreError>;
    /// Adds each of `ns` unless one with the same id exists (idempotent), in
    /// one round trip for the notifications (and one for their positions).
    async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError>;
    /// A page of the recipient's notifications, newest first.
    async fn list(
        &self,
        recipient_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError>;
    /// Up to `limit` entries of every recipient after `position`, in
    /// position order: what the [`watcher`] fans out.
    async fn entries_after(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError>;
    /// The highest position written so far (0 when none): where a watcher
    /// starting now begins.
    async fn last_position(&self) -> Result<u64, StoreError>;
    /// The highest position any writer has taken so far (0 when none): at
    /// least every position written, and ahead of them while a write is in
    /// flight. The watcher's cheap look between reads of the entries: when
    /// it has published up to here, nothing new can be in the inbox. The
    /// default is [`Self::last_position`].
    async fn last_taken(&self) -> Result<u64, StoreError> {
        self.last_position().await
    }
    /// The position of the recipient's notification `id`: `None` when the
    /// recipient has no such notification, 0 when it was written before
    /// positions existed (so everything positioned is after it).
    async fn position_of(&self, recipient_id: &str, id: &str) -> Result<Option<u64>, StoreError>;
    /// Up to `limit` of the recipient's notifications with a position in
    /// `(after, upto]`, in position order: what a resumed stream replays.
    async fn recipient_entries(
        &self,
        recipient_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError>;
    /// Woken after each write through this adapter, so the watcher passes on
    /// this process's own notifications without waiting for a poll.
    fn written(&self) -> Arc<Notify>;
    /// Whether other processes write to the same inbox (replicas on one
    /// database): then only polling finds their entries.
    fn shared(&self) -> bool;
}

/// The notification store and the live streams fed from it, as router state.
#[derive(Clone)]
pub struct Notifications {
    /// The inbox: the source of truth for lists and replays.
    pub store: Arc<dyn NotificationStore>,
    /// This process's open streams, fed by its [`watcher::InboxWatcher`].
    pub streams: Arc<hub::StreamHub>,
}

impl Notifications {
    /// The store with a stream hub limited as `config` says.
    pub fn new(store: Arc<dyn NotificationStore>, config: hub::StreamConfig) -> Self {
        Self {
            streams: Arc::new(hub::StreamHub::new(config)),
            store,
        }
    }

    /// The background task that feeds the streams from the store; the
    /// service runs it supervised, beside the relay and the consumer.
    pub fn watcher(&self) -> watcher::InboxWatcher {
        watcher::InboxWatcher::new(self.store.clone(), self.streams.clone())
    }
}

/// `GET /notifications` and `GET /notifications/stream` for the
/// authenticated caller.
pub fn routes<S>() -> OpenApiRouter<S>
where
    Notifications: FromRef<S>,
    IdentityState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream::open))
}

/// A page of the caller's notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<Notification>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's notifications, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(params::PageParams),
    responses((status = 200, description = "a page of notifications", body = NotificationPage))
)]
async fn list(
    State(Notifications { store, .. }): State<Notifications>,
    caller: AuthUser,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<NotificationPage>, ApiError> {
    let page = page.request(LIST)?;
    let notifications = store.list(&caller.id, &page).await?;
    Ok(Json(NotificationPage {
        next_cursor: params::next_cursor(LIST, &notifications),
        notifications: notifications.items,
    }))
}

/// Notifications in memory. A position is taken and the notification
/// stored under one lock, so positions have no holes and the watcher is
/// woken rather than polling.
#[derive(Default)]
pub struct InMemoryNotificationStore {
    state: RwLock<InMemoryNotifications>,
    written: Arc<Notify>,
}

/// Every notification in position order (position = index + 1), where each
/// id is, and each recipient's positions.
#[derive(Default)]
struct InMemoryNotifications {
    log: Vec<Notification>,
    positions: HashMap<String, u64>,
    by_recipient: HashMap<String, Vec<u64>>,
}

impl InMemoryNotifications {
    fn at(&self, position: u64) -> &Notification {
        &self.log[(position - 1) as usize]
    }

    fn entry(&self, position: u64) -> InboxEntry {
        InboxEntry {
            position,
            notification: Some(self.at(position).clone()),
        }
    }
}

#[async_trait]
impl NotificationStore for InMemoryNotificationStore {
    async fn add(&self, n: &Notification) -> Result<(), StoreError> {
        self.add_many(std::slice::from_ref(n)).await
    }

    async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError> {
        let mut state = self.state.write().await;
        for n in ns {
            if state.positions.contains_key(&n.id) {
                continue;
            }
            state.log.push(n.clone());
            let position = state.log.len() as u64;
            state.positions.insert(n.id.clone(), position);
            state
                .by_recipient
                .entry(n.recipient_id.clone())
                .or_default()
                .push(position);
        }
        drop(state);
        self.written.notify_one();
        Ok(())
    }

    async fn list(
        &self,
        recipient_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let state = self.state.read().await;
        let mine = state
            .by_recipient
            .get(recipient_id)
            .map(|positions| positions.iter().map(|&p| state.at(p).clone()).collect())
            .unwrap_or_default();
        Ok(Page::of_all(mine, page, LIST.order, Notification::page_key))
    }

    async fn entries_after(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let state = self.state.read().await;
        let last = state.log.len() as u64;
        Ok((position + 1..=last)
            .take(limit)
            .map(|p| state.entry(p))
            .collect())
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        Ok(self.state.read().await.log.len() as u64)
    }

    async fn position_of(&self, recipient_id: &str, id: &str) -> Result<Option<u64>, StoreError> {
        let state = self.state.read().await;
        Ok(state
            .positions
            .get(id)
            .copied()
            .filter(|&p| state.at(p).recipient_id == recipient_id))
    }

    async fn recipient_entries(
        &self,
        recipient_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let state = self.state.read().await;
        let Some(mine) = state.by_recipient.get(recipient_id) else {
            return Ok(Vec::new());
        };
        Ok(mine
            .iter()
            .copied()
            .filter(|&p| p > after && p <= upto)
            .take(limit)
            .map(|p| state.entry(p))
            .collect())
    }

    fn written(&self) -> Arc<Notify> {
        self.written.clone()
    }

    fn shared(&self) -> bool {
        false
    }
}

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
        let last = counter
            .as_ref()
            .and_then(|c| c.get("last"))
            .and_then(whole_number)
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
        let docs: Vec<bson::Document> = self
            .coll
            .clone_with_type::<bson::Document>()
            .find(filter)
            .sort(doc! {"position": 1})
            .limit(limit as i64)
            .await
            .map_err(mongo::read_error)?
            .try_collect()
            .await
            .map_err(mongo::read_error)?;
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
                let mut document = bson::to_document(n).map_err(mongo::encode_error)?;
                document.insert("_id", &n.id);
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
        recipient_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let mut filter = doc! {"recipient_id": recipient_id};
        mongo::page_filter(&mut filter, "created_at", LIST.order, page);
        let found = self
            .coll
            .find(filter)
            .sort(mongo::page_sort("created_at", LIST.order))
            .limit(page.fetch() as i64)
            .await
            .map_err(mongo::read_error)?
            .try_collect()
            .await
            .map_err(mongo::read_error)?;
        Ok(Page::from_fetched(found, page, Notification::page_key))
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
        Ok(last
            .as_ref()
            .and_then(|d| d.get("position"))
            .and_then(whole_number)
            .unwrap_or(0))
    }

    /// One read of the counter document by `_id` (about half the cost of
    /// the range query on the test server).
    async fn last_taken(&self) -> Result<u64, StoreError> {
        let counter = self
            .counters
            .find_one(doc! {"_id": POSITION_COUNTER})
            .await
            .map_err(mongo::read_error)?;
        Ok(counter
            .as_ref()
            .and_then(|c| c.get("last"))
            .and_then(whole_number)
            .unwrap_or(0))
    }

    async fn position_of(&self, recipient_id: &str, id: &str) -> Result<Option<u64>, StoreError> {
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
        recipient_id: &str,
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

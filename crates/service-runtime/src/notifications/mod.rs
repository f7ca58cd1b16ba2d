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
//!
//! Laid out like [`crate::identity`]: the notification, its store port and
//! the router state here; the HTTP `routes`, the live streams
//! ([`hub`], [`stream`], [`watcher`]) and the adapters `memory`
//! ([`InMemoryNotificationStore`]) and `mongo` ([`MongoNotificationStore`])
//! beside it.

pub mod hub;
mod memory;
mod mongo;
mod routes;
pub mod stream;
pub mod watcher;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{BookingId, BookingStatus, EventId, UserId};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::{
    paging::{After, List, Page, PageRequest},
    store::StoreError,
};

pub use memory::InMemoryNotificationStore;
pub use mongo::MongoNotificationStore;
pub use routes::{routes, NotificationPage};

/// One notification. `id` is the id of the event that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a5e0-7a1c-7cc2-9d7e-2f1d3c4b5a69", "recipient_id": "0193a5d0-1111-7000-8000-000000000001", "kind": "status_changed", "booking_id": "0193a5df-2222-7000-8000-000000000002", "status": "ACCEPTED", "reason": null, "message": "Your booking at Sea View was accepted.", "created_at": "2026-11-25T02:04:41.123Z"}))]
pub struct Notification {
    #[schema(value_type = String)]
    pub id: EventId,
    #[schema(value_type = String)]
    pub recipient_id: UserId,
    /// `booking_requested`, `cancellation_requested` or `status_changed`.
    pub kind: String,
    #[schema(value_type = String)]
    pub booking_id: BookingId,
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
            id: self.id.to_string(),
        }
    }
}

#[cfg(test)]
impl Notification {
    /// A status change for `recipient`, for the unit tests of the hub and
    /// the watcher, which care only about who gets it and in what order.
    pub(crate) fn sample(id: &str, recipient: &str) -> Self {
        Notification {
            id: id.into(),
            recipient_id: recipient.into(),
            kind: "status_changed".into(),
            booking_id: "b".into(),
            status: BookingStatus::Accepted,
            reason: None,
            message: "m".into(),
            created_at: Utc::now(),
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
        recipient_id: &UserId,
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
    async fn position_of(
        &self,
        recipient_id: &UserId,
        id: &EventId,
    ) -> Result<Option<u64>, StoreError>;
    /// Up to `limit` of the recipient's notifications with a position in
    /// `(after, upto]`, in position order: what a resumed stream replays.
    async fn recipient_entries(
        &self,
        recipient_id: &UserId,
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

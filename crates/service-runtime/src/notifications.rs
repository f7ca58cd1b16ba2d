//! Notifications: what a user is told about their bookings.
//!
//! Both services keep notifications the same way (one per event, keyed by the
//! event id so a redelivered event does not notify twice) and serve them at
//! `GET /notifications`, newest first, a page at a time.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use async_trait::async_trait;
use axum::{
    extract::{FromRef, State},
    routing::get,
    Json, Router,
};
use bson::doc;
use chrono::{DateTime, Utc};
use events::BookingStatus;
use futures::TryStreamExt;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery},
    identity::IdentityState,
    mongo,
    paging::{After, List, Order, Page, PageRequest},
    store::StoreError,
};

/// One notification. `id` is the id of the event that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
pub const LIST: List = List {
    name: "notifications",
    order: Order::NewestFirst,
};

impl Notification {
    /// Its place in [`LIST`].
    pub fn page_key(&self) -> After {
        After {
            key: events::timestamp::format(&self.created_at),
            id: self.id.clone(),
        }
    }
}

/// Where notifications live.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Adds `n` unless one with the same id exists (idempotent).
    async fn add(&self, n: &Notification) -> Result<(), StoreError>;
    /// Adds each of `ns` unless one with the same id exists (idempotent), in
    /// one round trip.
    async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError>;
    /// A page of the recipient's notifications, newest first.
    async fn list(
        &self,
        recipient_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError>;
}

/// The notification store as router state.
#[derive(Clone)]
pub struct Notifications(pub Arc<dyn NotificationStore>);

/// `GET /notifications` for the authenticated caller.
pub fn routes<S>() -> Router<S>
where
    Notifications: FromRef<S>,
    IdentityState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/notifications", get(list))
}

async fn list(
    State(Notifications(store)): State<Notifications>,
    caller: AuthUser,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<Value>, ApiError> {
    let page = page.request(LIST)?;
    let notifications = store.list(&caller.id, &page).await?;
    Ok(Json(params::page_json(
        "notifications",
        LIST,
        notifications,
    )))
}

/// Notifications in memory.
#[derive(Default)]
pub struct InMemoryNotificationStore {
    state: RwLock<InMemoryNotifications>,
}

/// Notifications by recipient, and every id seen (redeliveries are ignored).
#[derive(Default)]
struct InMemoryNotifications {
    ids: HashSet<String>,
    by_recipient: HashMap<String, Vec<Notification>>,
}

#[async_trait]
impl NotificationStore for InMemoryNotificationStore {
    async fn add(&self, n: &Notification) -> Result<(), StoreError> {
        self.add_many(std::slice::from_ref(n)).await
    }

    async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError> {
        let mut state = self.state.write().await;
        for n in ns {
            if state.ids.insert(n.id.clone()) {
                state
                    .by_recipient
                    .entry(n.recipient_id.clone())
                    .or_default()
                    .push(n.clone());
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        recipient_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let mine = self
            .state
            .read()
            .await
            .by_recipient
            .get(recipient_id)
            .cloned()
            .unwrap_or_default();
        Ok(Page::of_all(mine, page, LIST.order, Notification::page_key))
    }
}

/// Notifications in MongoDB (`notifications`, `_id` = event id).
pub struct MongoNotificationStore {
    coll: Collection<Notification>,
}

impl MongoNotificationStore {
    /// Opens the collection and makes sure its one index exists: a
    /// recipient's notifications in list order (`_id` breaks ties), so a
    /// page is a bounded index walk whatever the cursor.
    pub async fn new(db: &Database) -> Result<Self, StoreError> {
        let coll = db.collection::<Notification>("notifications");
        mongo::ensure_indexes(
            &coll,
            vec![IndexModel::builder()
                .keys(doc! {"recipient_id": 1, "created_at": -1, "_id": -1})
                .build()],
        )
        .await?;
        // Its predecessor without `_id`, which could not give the order alone.
        mongo::drop_superseded_indexes(&coll, &["recipient_id_1_created_at_-1"]).await?;
        Ok(Self { coll })
    }
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
        let documents = ns
            .iter()
            .map(|n| {
                let mut document = bson::to_document(n).map_err(mongo::encode_error)?;
                document.insert("_id", &n.id);
                Ok(document)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Unordered: one duplicate (a redelivered event) does not stop the rest.
        match self
            .coll
            .clone_with_type::<bson::Document>()
            .insert_many(documents)
            .ordered(false)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if mongo::is_duplicate_key(&e) => Ok(()),
            Err(e) => Err(mongo::read_error(e)),
        }
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
}

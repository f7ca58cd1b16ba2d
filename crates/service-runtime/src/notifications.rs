//! Notifications: what a user is told about their bookings.
//!
//! Both services keep notifications the same way (one per event, keyed by the
//! event id so a redelivered event does not notify twice) and serve them at
//! `GET /notifications`, newest first.

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
use serde_json::{json, Value};
use tokio::sync::RwLock;

use crate::{auth::AuthUser, http::ApiError, identity::IdentityState, mongo, store::StoreError};

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

/// How many notifications one listing returns at most.
pub const LIST_LIMIT: i64 = 200;

/// Where notifications live.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Adds `n` unless one with the same id exists (idempotent).
    async fn add(&self, n: &Notification) -> Result<(), StoreError>;
    /// Adds each of `ns` unless one with the same id exists (idempotent), in
    /// one round trip.
    async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError>;
    /// The recipient's newest notifications first.
    async fn list(&self, recipient_id: &str) -> Result<Vec<Notification>, StoreError>;
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
) -> Result<Json<Value>, ApiError> {
    let notifications = store.list(&caller.id).await?;
    Ok(Json(json!({ "notifications": notifications })))
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

    async fn list(&self, recipient_id: &str) -> Result<Vec<Notification>, StoreError> {
        let mut mine = self
            .state
            .read()
            .await
            .by_recipient
            .get(recipient_id)
            .cloned()
            .unwrap_or_default();
        mine.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        mine.truncate(LIST_LIMIT as usize);
        Ok(mine)
    }
}

/// Notifications in MongoDB (`notifications`, `_id` = event id).
pub struct MongoNotificationStore {
    coll: Collection<Notification>,
}

impl MongoNotificationStore {
    pub async fn new(db: &Database) -> Result<Self, StoreError> {
        let coll = db.collection::<Notification>("notifications");
        mongo::ensure_indexes(
            &coll,
            vec![IndexModel::builder()
                .keys(doc! {"recipient_id": 1, "created_at": -1})
                .build()],
        )
        .await?;
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

    async fn list(&self, recipient_id: &str) -> Result<Vec<Notification>, StoreError> {
        self.coll
            .find(doc! {"recipient_id": recipient_id})
            .sort(doc! {"created_at": -1, "_id": -1})
            .limit(LIST_LIMIT)
            .await
            .map_err(mongo::read_error)?
            .try_collect()
            .await
            .map_err(mongo::read_error)
    }
}

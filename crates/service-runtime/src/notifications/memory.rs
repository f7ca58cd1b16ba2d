//! [`InMemoryNotificationStore`], the notification store of the in-memory
//! adapters.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use events::{EventId, UserId};
use tokio::sync::{Notify, RwLock};

use super::{InboxEntry, Notification, NotificationStore, LIST};
use crate::{
    paging::{Page, PageRequest},
    store::StoreError,
};

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
    positions: HashMap<EventId, u64>,
    by_recipient: HashMap<UserId, Vec<u64>>,
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
        recipient_id: &UserId,
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

    async fn position_of(
        &self,
        recipient_id: &UserId,
        id: &EventId,
    ) -> Result<Option<u64>, StoreError> {
        let state = self.state.read().await;
        Ok(state
            .positions
            .get(id)
            .copied()
            .filter(|&p| &state.at(p).recipient_id == recipient_id))
    }

    async fn recipient_entries(
        &self,
        recipient_id: &UserId,
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

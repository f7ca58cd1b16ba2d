use std::collections::HashMap;

use async_trait::async_trait;
use tokio::sync::RwLock;

use super::{UserRecord, UserStore};
use crate::store::StoreError;

/// Users in process memory, for the embedded mode and fast tests.
#[derive(Default)]
pub struct InMemoryUserStore {
    by_id: RwLock<HashMap<events::UserId, UserRecord>>,
}

#[async_trait]
impl UserStore for InMemoryUserStore {
    async fn insert(&self, user: &UserRecord) -> Result<(), StoreError> {
        let mut users = self.by_id.write().await;
        if users.values().any(|u| u.email == user.email) {
            return Err(StoreError::Duplicate("a user with this email".into()));
        }
        users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .by_id
            .read()
            .await
            .values()
            .find(|u| u.email == email)
            .cloned())
    }

    async fn find_by_id(&self, id: &events::UserId) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.by_id.read().await.get(id).cloned())
    }
}

//! Sign-up, login and `me`, the same on both services.
//!
//! Each service keeps its own users (travelers in the traveler database,
//! owners in the owner database); the routes and rules are shared so the two
//! cannot drift apart. Mount [`routes`] under `/api/travelers` or `/api/owners`.

mod memory;
mod mongo;
mod routes;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    auth::{JwtKeys, Role},
    store::StoreError,
};

pub use memory::InMemoryUserStore;
pub use mongo::MongoUserStore;
pub use routes::routes;

/// A stored account. The password exists only as an argon2 hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    /// Lower-cased, so uniqueness ignores case.
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

/// The public view of a user: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role,
            created_at: u.created_at,
        }
    }
}

/// Where accounts live. Adapters: [`MongoUserStore`], [`InMemoryUserStore`].
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`StoreError::Duplicate`] when the email is taken.
    async fn insert(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn find_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
}

/// What the identity routes and the [`crate::auth::AuthUser`] extractor need:
/// the users, the token keys, and which role this service serves.
#[derive(Clone)]
pub struct IdentityState {
    pub users: Arc<dyn UserStore>,
    pub jwt: Arc<JwtKeys>,
    pub role: Role,
}

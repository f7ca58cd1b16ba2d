use async_trait::async_trait;
use bson::doc;
use mongodb::{Collection, Database, IndexModel};

use super::{UserRecord, UserStore};
use crate::{mongo, store::StoreError};

/// Users in the service's own MongoDB database (`users` collection, unique email).
pub struct MongoUserStore {
    users: Collection<UserRecord>,
}

impl MongoUserStore {
    /// Opens the collection and makes sure the unique email index exists.
    pub async fn new(db: &Database) -> Result<Self, StoreError> {
        let users = db.collection::<UserRecord>("users");
        mongo::ensure_indexes(
            &users,
            vec![IndexModel::builder()
                .keys(doc! {"email": 1})
                .options(mongo::unique())
                .build()],
        )
        .await?;
        Ok(Self { users })
    }
}

#[async_trait]
impl UserStore for MongoUserStore {
    async fn insert(&self, user: &UserRecord) -> Result<(), StoreError> {
        let document = mongo::with_id(user, &user.id)?;
        self.users
            .clone_with_type::<bson::Document>()
            .insert_one(document)
            .await
            .map_err(|e| mongo::write_error(e, "a user with this email"))?;
        Ok(())
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .find_one(doc! {"email": email})
            .await
            .map_err(mongo::read_error)
    }

    async fn find_by_id(&self, id: &events::UserId) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .find_one(doc! {"_id": id})
            .await
            .map_err(mongo::read_error)
    }
}

//! Writing notifications and the change they announce in one command.
//!
//! A consumer that applies a batch of events writes two things per event: the
//! notification about it, then the state change. As separate commands that is
//! two round trips per batch, on a database server that pays a large fixed
//! cost per command. One ordered `bulkWrite` (MongoDB 8.0+) does both, and
//! its order keeps the rule that whoever sees a change can already read the
//! notification about it.

use mongodb::{
    options::{InsertOneModel, WriteModel},
    Database, Namespace,
};

use super::{is_duplicate_key, read_error};
use crate::{
    notifications::{self, Notification},
    store::StoreError,
};

/// What [`notify_then`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifiedWrite {
    /// The notifications and the writes are stored.
    Written,
    /// Something already existed (events delivered again): the ordered write
    /// stopped there. The notifications are now all stored, duplicates left
    /// as they were; the caller applies its writes in its own way that
    /// tolerates what already exists.
    Redelivered,
}

/// Writes `notifications` (into [`notifications::COLLECTION`] of `db`) and
/// then `writes`, as one ordered `bulkWrite`.
pub async fn notify_then(
    db: &Database,
    notifications: &[Notification],
    writes: Vec<WriteModel>,
) -> Result<NotifiedWrite, StoreError> {
    let namespace = Namespace::new(db.name(), notifications::COLLECTION);
    let mut models = Vec::with_capacity(notifications.len() + writes.len());
    for n in notifications {
        models.push(WriteModel::from(
            InsertOneModel::builder()
                .namespace(namespace.clone())
                .document(notifications::document(n)?)
                .build(),
        ));
    }
    models.extend(writes);
    if models.is_empty() {
        return Ok(NotifiedWrite::Written);
    }
    match db.client().bulk_write(models).ordered(true).await {
        Ok(_) => Ok(NotifiedWrite::Written),
        Err(e) if is_duplicate_key(&e) => {
            notifications::insert_ignoring_duplicates(
                &db.collection(notifications::COLLECTION),
                notifications,
            )
            .await?;
            Ok(NotifiedWrite::Redelivered)
        }
        Err(e) => Err(read_error(e)),
    }
}

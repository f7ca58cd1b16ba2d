//! Writing an aggregate together with the events it publishes: the one way
//! the MongoDB stores put an event in an outbox.
//!
//! The state change and its event are one single-document write (the event
//! goes into the document's embedded `outbox` array), so an event is never
//! published for a write that did not commit and never lost for one that
//! did. After the write is acknowledged the event is handed to the relay
//! ([`OutboxSignal`]), which publishes it without reading it back. Getting
//! any of the three steps wrong (the array, the acknowledgement, the
//! hand-over in order) loses or reorders events, so they live here once.

use bson::{doc, Document};
use mongodb::{options::ReturnDocument, Collection};

use super::{outbox_entry, outbox_ids, OUTBOX_FIELD};
use crate::{
    mongo::{is_duplicate_key, write_error},
    outbox::{message::OutboxMessage, signal::OutboxSignal},
    store::StoreError,
};

/// One collection of aggregates that carry an outbox.
#[derive(Clone)]
pub struct OutboxWrites {
    name: &'static str,
    collection: Collection<Document>,
    signal: OutboxSignal,
}

impl OutboxWrites {
    /// Writes to `collection` (named `name`, as the relay sweeps it), handing
    /// events to the relay woken by `signal`.
    pub fn new(name: &'static str, collection: Collection<Document>, signal: OutboxSignal) -> Self {
        Self {
            name,
            collection,
            signal,
        }
    }

    /// `document` with `event` as its outbox: a new aggregate to insert. Call
    /// [`Self::inserted`] once the insert is acknowledged (for inserts that
    /// are batched with others, see `InsertBatcher`).
    pub fn new_document(
        mut document: Document,
        event: &OutboxMessage,
    ) -> Result<Document, StoreError> {
        document.insert(OUTBOX_FIELD, vec![outbox_entry(event)?]);
        Ok(document)
    }

    /// A document made by [`Self::new_document`] was inserted: hands its
    /// event to the relay. Never call it for an insert that may not have
    /// committed.
    pub fn inserted(&self, event: OutboxMessage) {
        self.signal.committed(self.name, [event]);
    }

    /// Inserts `document` with `event` as its outbox and hands the event
    /// over. The driver's error is returned as it is, so that the caller can
    /// tell a duplicate key from an outage.
    pub async fn insert(
        &self,
        document: Document,
        event: OutboxMessage,
    ) -> Result<(), OutboxWriteError> {
        let document = Self::new_document(document, &event)?;
        self.collection
            .insert_one(document)
            .await
            .map_err(OutboxWriteError::Write)?;
        self.inserted(event);
        Ok(())
    }

    /// Applies `update` to the document matching `filter` and appends
    /// `event` to its outbox in the same write, then hands the event over to
    /// be published after the events already pending in that document.
    /// Returns the document as written (with `projection`, if given), or
    /// `None` when nothing matched (and nothing was written).
    pub async fn update(
        &self,
        filter: Document,
        mut update: Document,
        projection: Option<Document>,
        event: OutboxMessage,
    ) -> Result<Option<Document>, OutboxWriteError> {
        update.insert("$push", doc! {OUTBOX_FIELD: outbox_entry(&event)?});
        let mut write = self
            .collection
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After);
        if let Some(mut projection) = projection {
            // The ids of the pending events, for the hand-over in order.
            projection.insert(format!("{OUTBOX_FIELD}.event_id"), 1);
            write = write.projection(projection);
        }
        let Some(document) = write.await.map_err(OutboxWriteError::Write)? else {
            return Ok(None);
        };
        self.signal
            .appended(self.name, event, &outbox_ids(&document));
        Ok(Some(document))
    }
}

/// Why a write with an event failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxWriteError {
    /// The event could not be encoded (nothing was written).
    #[error(transparent)]
    Encode(#[from] StoreError),
    /// The database refused or did not acknowledge the write; the caller
    /// maps it (a duplicate key means something else to each store).
    #[error(transparent)]
    Write(mongodb::error::Error),
}

impl OutboxWriteError {
    /// Whether the write hit a unique index.
    pub fn is_duplicate_key(&self) -> bool {
        matches!(self, Self::Write(e) if is_duplicate_key(e))
    }

    /// The error as a store error, `what` naming what was written (for a
    /// duplicate key that is a conflict about it).
    pub fn into_store_error(self, what: &str) -> StoreError {
        match self {
            Self::Encode(e) => e,
            Self::Write(e) => write_error(e, what),
        }
    }
}

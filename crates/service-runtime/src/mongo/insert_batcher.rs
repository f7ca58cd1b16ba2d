//! Group commit for single-document inserts on a request path.
//!
//! Each HTTP request that creates something wants one insert, and a
//! MongoDB-protocol server pays a large fixed cost per command (parsing,
//! dispatch, index maintenance set-up). Requests that arrive while a write
//! is in flight are gathered into the next `insertMany` (unordered), so under
//! load the server sees a few large commands instead of many small ones,
//! while a lone request still goes out at once: nothing waits for a batch to
//! fill. Every caller gets its own document's result, and only after the
//! server has acknowledged the command, so nothing is answered early.

use std::sync::Arc;

use bson::Document;
use mongodb::{
    error::{Error, ErrorKind},
    Collection,
};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::DUPLICATE_KEY;
use crate::store::StoreError;

/// Most documents in one `insertMany`.
pub const MAX_BATCH: usize = 128;

/// Batches in flight at once: one being written while the next gathers.
const WRITERS: usize = 2;

/// Requests waiting for a writer before `insert` itself waits (backpressure).
const QUEUE: usize = 4 * MAX_BATCH;

/// What happened to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The document is stored.
    Yes,
    /// A unique index (such as `_id`) already holds its key; nothing changed.
    DuplicateKey,
}

struct Request {
    document: Document,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// Coalesces concurrent inserts into one collection (see the module docs).
///
/// Cloning is cheap; the writers stop when the last clone is dropped, after
/// writing what was already queued.
#[derive(Clone)]
pub struct InsertBatcher {
    requests: mpsc::Sender<Request>,
}

impl InsertBatcher {
    /// Starts the writers on the current Tokio runtime.
    pub fn new(collection: Collection<Document>) -> Self {
        let (requests, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(collection.clone(), receiver.clone()));
        }
        Self { requests }
    }

    /// Inserts `document` with whatever else is waiting, and returns once the
    /// server has answered for it.
    pub async fn insert(&self, document: Document) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { document, reply })
            .await
            .map_err(|_| StoreError::unavailable("insert writer stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("insert writer stopped"))?
    }
}

/// One writer: takes everything queued (up to [`MAX_BATCH`]), writes it as
/// one unordered `insertMany`, answers each request, repeats.
async fn write_batches(
    collection: Collection<Document>,
    receiver: Arc<Mutex<mpsc::Receiver<Request>>>,
) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let (documents, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| (r.document, r.reply)).unzip();
        let count = documents.len();
        let result = collection.insert_many(documents).ordered(false).await;
        for (reply, outcome) in replies.into_iter().zip(outcomes(result, count)) {
            let _ = reply.send(outcome);
        }
    }
}

/// Each document's result from the reply to an unordered `insertMany` of
/// `count` documents. Write errors name the document they belong to; any
/// other failure (network, write concern) leaves every document's fate
/// unknown, which the caller reports as unavailable.
fn outcomes(result: Result<impl Sized, Error>, count: usize) -> Vec<Result<Inserted, StoreError>> {
    let error = match result {
        Ok(_) => return vec![Ok(Inserted::Yes); count],
        Err(e) => e,
    };
    let ErrorKind::InsertMany(failure) = error.kind.as_ref() else {
        return vec![Err(super::classify(error)); count];
    };
    let mut results = match &failure.write_concern_error {
        Some(wc) => {
            let e = StoreError::unavailable(format!("write concern {}: {}", wc.code, wc.message));
            vec![Err(e); count]
        }
        None => vec![Ok(Inserted::Yes); count],
    };
    for w in failure.write_errors.iter().flatten() {
        if let Some(slot) = results.get_mut(w.index) {
            *slot = if w.code == DUPLICATE_KEY {
                Ok(Inserted::DuplicateKey)
            } else {
                Err(super::classify_write_error(w.code, &w.message))
            };
        }
    }
    results
}

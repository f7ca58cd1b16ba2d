//! What can go wrong in any store, independent of the adapter behind it.
//!
//! Callers act on the *kind* of a failure, not on its text: a transient one
//! is retried (consumers back off, HTTP answers 503 with `Retry-After`), a
//! conflict is the client's to resolve (409), and a permanent one will fail
//! again however often it is retried (HTTP 500 with an error id; a consumer
//! dead-letters the event after a few attempts). The adapter decides the
//! kind from the driver's error codes and keeps the driver's error as the
//! source, so logs show the whole chain.

use std::{collections::HashMap, error::Error as StdError, fmt, hash::Hash, sync::Arc};

use tokio::sync::{Mutex, MutexGuard};

use crate::{
    outbox::{InMemoryOutbox, OutboxMessage},
    paging::{After, List, Page, PageRequest},
};

/// The underlying error of a store failure: shared so that [`StoreError`]
/// stays cheap to clone (one failed batch write fails every caller in it).
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// What a caller should do about a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database did not answer or may answer differently later: retry.
    Transient,
    /// The write contradicts data already stored (a unique key).
    Conflict,
    /// Retrying cannot help: a document that cannot be encoded or decoded,
    /// a write the server refuses for good.
    Permanent,
}

/// A store failure the HTTP layer and consumers can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. an email already used).
    #[error("{0} already exists")]
    Duplicate(String),
    /// The database did not answer or failed in a way that may pass
    /// (network, election, timeout, write concern): transient.
    #[error("store unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    /// The database refused the operation for good, or a document could not
    /// be encoded or decoded: permanent.
    #[error("store refused the operation: {context}")]
    Permanent {
        context: String,
        #[source]
        source: Option<Cause>,
    },
}

impl StoreError {
    /// A transient failure described by `context` alone.
    pub fn unavailable(context: impl Into<String>) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: None,
        }
    }

    /// A transient failure caused by `source`.
    pub fn unavailable_from(
        context: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A permanent failure caused by `source`.
    pub fn permanent_from(
        context: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        StoreError::Permanent {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// What a caller should do about it.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Duplicate(_) => StoreErrorKind::Conflict,
            StoreError::Unavailable { .. } => StoreErrorKind::Transient,
            StoreError::Permanent { .. } => StoreErrorKind::Permanent,
        }
    }
}

/// Two store errors are equal when they are of one variant and say the same
/// (their sources are not compared: a driver error has no equality).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_string() == other.to_string()
    }
}

impl Eq for StoreError {}

/// Formats an error with every cause after it (`a: b: c`), for logs and
/// dead-letter headers, where the chain matters more than one line.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

/// An in-memory adapter's state and the outbox its changes queue their
/// events in, behind one lock, so that a change and its event are one step
/// (what a MongoDB adapter gets from writing both in one document).
pub struct StateWithOutbox<S> {
    state: Mutex<S>,
    outbox: Arc<InMemoryOutbox>,
}

impl<S: Default> StateWithOutbox<S> {
    /// Empty state whose changes queue their events in `outbox`.
    pub fn new(outbox: Arc<InMemoryOutbox>) -> Self {
        Self {
            state: Mutex::new(S::default()),
            outbox,
        }
    }
}

impl<S> StateWithOutbox<S> {
    /// The state, locked: a change queues its event ([`Self::queue`])
    /// before the guard is dropped.
    pub async fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().await
    }

    /// Queues the event of a change made under [`Self::lock`], while the
    /// lock is still held.
    pub fn queue(&self, event: OutboxMessage) {
        self.outbox.push(event);
    }
}

/// The values of `map` stored under `ids` (those that exist), in the order
/// of `ids`: how an in-memory adapter reads many entities by id at once.
pub fn values_by_ids<K: Eq + Hash, V: Clone>(map: &HashMap<K, V>, ids: &[K]) -> Vec<V> {
    ids.iter().filter_map(|id| map.get(id).cloned()).collect()
}

/// The page `request` asks for of `list`, made of the values of `map` that
/// `matches` admits (`key_of` gives each one's place in the list): how an
/// in-memory adapter answers what its MongoDB twin reads with
/// [`crate::mongo::find_page`].
pub fn page_of_matching<K, V: Clone>(
    map: &HashMap<K, V>,
    matches: impl Fn(&V) -> bool,
    request: &PageRequest,
    list: List,
    key_of: impl Fn(&V) -> After,
) -> Page<V> {
    let all = map.values().filter(|v| matches(v)).cloned().collect();
    Page::of_all(all, request, list.order, key_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection reset")]
    struct Reset;

    #[test]
    fn the_source_is_kept_and_shown_in_the_chain() {
        let e = StoreError::unavailable_from("find bookings", Reset);
        assert_eq!(e.kind(), StoreErrorKind::Transient);
        assert_eq!(e.source().unwrap().to_string(), "connection reset");
        assert_eq!(
            Chain(&e).to_string(),
            "store unavailable: find bookings: connection reset"
        );
    }

    #[test]
    fn each_variant_has_its_kind() {
        assert_eq!(
            StoreError::Duplicate("x".into()).kind(),
            StoreErrorKind::Conflict
        );
        assert_eq!(
            StoreError::permanent_from("decode", Reset).kind(),
            StoreErrorKind::Permanent
        );
        assert_eq!(
            StoreError::unavailable("stopped").kind(),
            StoreErrorKind::Transient
        );
    }
}

//! What can go wrong in any store, independent of the adapter behind it.

/// A store failure the HTTP layer and consumers can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. an email already used).
    #[error("{0} already exists")]
    Duplicate(String),
    /// The database did not answer or failed: transient, retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

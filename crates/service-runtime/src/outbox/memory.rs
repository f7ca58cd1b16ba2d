//! [`InMemoryOutbox`], the outbox of the in-memory adapters.

use async_trait::async_trait;
use events::EventId;

use super::{
    message::{OutboxMessage, OutboxStore},
    signal::OutboxSignal,
};
use crate::store::StoreError;

/// The outbox of the in-memory adapters. A store pushes to it while holding
/// its own state lock, which makes the state change and the event one step.
#[derive(Default)]
pub struct InMemoryOutbox {
    pending: std::sync::Mutex<Vec<OutboxMessage>>,
    signal: OutboxSignal,
}

impl InMemoryOutbox {
    pub fn new(signal: OutboxSignal) -> Self {
        Self {
            pending: Default::default(),
            signal,
        }
    }

    pub fn push(&self, message: OutboxMessage) {
        self.pending.lock().expect("outbox lock").push(message);
        self.signal.notify();
    }

    /// How many events wait to be published (tests and diagnostics).
    pub fn len(&self) -> usize {
        self.pending.lock().expect("outbox lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl OutboxStore for InMemoryOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        let pending = self.pending.lock().expect("outbox lock");
        Ok(pending.iter().take(limit).cloned().collect())
    }

    async fn mark_published(&self, event_ids: &[EventId]) -> Result<(), StoreError> {
        self.pending
            .lock()
            .expect("outbox lock")
            .retain(|m| !event_ids.contains(&m.event_id));
        Ok(())
    }
}

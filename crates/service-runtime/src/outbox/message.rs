//! [`OutboxMessage`], an event exactly as it will go on the wire, the port
//! the relay reads pending messages from and marks them published through
//! ([`OutboxStore`], with its [`Backlog`]), and the port it publishes them
//! through ([`EventPublisher`], which the messaging adapters implement).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{cloud_event_headers, Envelope, EventId, EventPayload};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// An event waiting to be published, exactly as it will go on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub event_id: EventId,
    pub topic: String,
    pub key: String,
    pub payload: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl OutboxMessage {
    /// The message for `envelope` on `topic`: its CloudEvents headers and,
    /// when traces are on, the `traceparent`/`tracestate` of the current
    /// span ([`crate::telemetry::trace_headers`]), so the event is published
    /// and consumed in the trace of the request that wrote it. The headers
    /// are stored with the event, so they survive the outbox's database
    /// round trip.
    pub fn new<P: EventPayload>(topic: &str, envelope: &Envelope<P>) -> Self {
        let mut headers = cloud_event_headers(envelope);
        headers.extend(crate::telemetry::trace_headers());
        Self {
            event_id: envelope.event_id.clone(),
            topic: topic.to_string(),
            key: envelope.key().to_string(),
            payload: envelope.to_json(),
            headers,
            created_at: envelope.occurred_at,
        }
    }

    /// The CloudEvents type from the `ce_type` header this build writes
    /// (`unknown` if absent): the `type` label of `events_published_total`.
    pub fn event_type(&self) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == "ce_type")
            .map_or(crate::metrics::UNKNOWN_EVENT_TYPE, |(_, v)| v.as_str())
    }
}

/// Where pending outbox messages are read from and marked published.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` unpublished messages, each aggregate's in write order.
    /// May return none when another replica currently owns relaying.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError>;
    /// The relay's next batch: like [`OutboxStore::pending`], but a store
    /// may answer from what writes handed over ([`OutboxSignal::committed`](super::OutboxSignal::committed))
    /// instead of reading, so an event it returned once (and that is still
    /// unpublished because publishing failed) may be left out until the
    /// store next looks everywhere. The default is `pending`.
    async fn next_batch(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.pending(limit).await
    }
    /// Removes delivered messages from the outbox.
    async fn mark_published(&self, event_ids: &[EventId]) -> Result<(), StoreError>;
    /// Keeps relay ownership while a batch this store returned is being
    /// published: a publish can outlast an ownership lease (the broker is
    /// slow or down, and delivery waits up to its timeout), and another
    /// replica must not start publishing the same events meanwhile. The
    /// relay calls it every [`RelayConfig::lease_renewal`](super::RelayConfig::lease_renewal) during a publish;
    /// `Ok(false)` means ownership was lost. The default owns nothing.
    async fn keep_lease(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Gives up relay ownership so another replica takes over at once.
    async fn release(&self) {}
    /// How many events wait in the whole outbox and since when, whoever
    /// relays them (the `outbox_*` gauges, read at scrape time). The
    /// default reads them through [`OutboxStore::pending`].
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let pending = self.pending(usize::MAX).await?;
        Ok(Backlog {
            pending: pending.len() as u64,
            oldest: pending.iter().map(|m| m.created_at).min(),
        })
    }
}

/// How much waits in an outbox: what an operator alerts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Events not yet removed after delivery.
    pub pending: u64,
    /// When the oldest of them was written.
    pub oldest: Option<DateTime<Utc>>,
}

/// Sends outbox messages to the broker and reports delivery per message.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// One result per message, in order; `Ok` only after the broker acknowledged it.
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>>;
    /// Waits for queued messages to be delivered (at shutdown).
    async fn flush(&self, _timeout: Duration) {}
}

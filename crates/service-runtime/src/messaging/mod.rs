//! Publishing and consuming events, independent of the broker.
//!
//! Handlers implement [`EventHandler`] for one topic's payload type and are
//! registered as [`Subscription`]s. [`process`] is the one place that decides
//! what happens to a message: applied, retried with backoff while the failure
//! is transient (never skipped), or dead-lettered when it can never succeed.
//! Both the Kafka consumer and the in-memory bus drive it.

pub mod kafka;
pub mod memory;

use std::{marker::PhantomData, sync::Arc, time::Duration};

use async_trait::async_trait;
use events::{decode, Envelope, EventPayload};
use tokio_util::sync::CancellationToken;

use crate::{backoff::Backoff, outbox::OutboxMessage, store::StoreError};

/// Sends outbox messages to the broker and reports delivery per message.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// One result per message, in order; `Ok` only after the broker acknowledged it.
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>>;
    /// Waits for queued messages to be delivered (at shutdown).
    async fn flush(&self, _timeout: Duration) {}
}

/// Why a handler did not apply an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Will never succeed (unknown booking, inconsistent data): dead-letter it.
    #[error("{code}: {message}")]
    Permanent { code: &'static str, message: String },
    /// May succeed later (database down): retry, do not move past it.
    #[error("transient: {0}")]
    Transient(String),
}

impl HandleError {
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        HandleError::Permanent {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for HandleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(msg) => HandleError::Transient(msg),
            StoreError::Duplicate(what) => {
                HandleError::permanent("conflict", format!("{what} already exists"))
            }
        }
    }
}

/// Applies one topic's events. Must be idempotent: the same event may arrive
/// more than once, and applying it twice must equal applying it once.
#[async_trait]
pub trait EventHandler<P: EventPayload>: Send + Sync + 'static {
    async fn handle(&self, event: Envelope<P>) -> Result<(), HandleError>;
}

#[async_trait]
trait RawHandler: Send + Sync {
    async fn handle_raw(&self, value: &[u8]) -> Result<(), HandleError>;
}

struct Decoding<P, H> {
    handler: Arc<H>,
    _payload: PhantomData<fn() -> P>,
}

#[async_trait]
impl<P: EventPayload, H: EventHandler<P>> RawHandler for Decoding<P, H> {
    async fn handle_raw(&self, value: &[u8]) -> Result<(), HandleError> {
        let envelope = decode::<P>(value).map_err(|e| HandleError::Permanent {
            code: e.code(),
            message: e.to_string(),
        })?;
        self.handler.handle(envelope).await
    }
}

/// A topic and the handler for its events.
#[derive(Clone)]
pub struct Subscription {
    pub topic: String,
    handler: Arc<dyn RawHandler>,
}

impl Subscription {
    pub fn new<P: EventPayload, H: EventHandler<P>>(
        topic: impl Into<String>,
        handler: Arc<H>,
    ) -> Self {
        Self {
            topic: topic.into(),
            handler: Arc::new(Decoding {
                handler,
                _payload: PhantomData,
            }),
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is durable: the offset may move past it.
    Applied,
    /// Can never be applied: publish to the dead-letter topic, then move on.
    DeadLetter { code: &'static str, reason: String },
    /// Shutdown came while retrying: do not move the offset.
    Stopped,
}

/// Maximum message size this consumer will try to apply; larger ones are
/// dead-lettered without parsing.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Applies one message, retrying transient failures with backoff until it
/// succeeds or `stop` is cancelled.
pub async fn process(sub: &Subscription, value: &[u8], stop: &CancellationToken) -> Outcome {
    if value.len() > MAX_EVENT_BYTES {
        return Outcome::DeadLetter {
            code: "too_large",
            reason: format!("{} bytes exceeds {MAX_EVENT_BYTES}", value.len()),
        };
    }
    let mut backoff = Backoff::default();
    loop {
        match sub.handler.handle_raw(value).await {
            Ok(()) => return Outcome::Applied,
            Err(HandleError::Permanent { code, message }) => {
                return Outcome::DeadLetter {
                    code,
                    reason: message,
                }
            }
            Err(HandleError::Transient(error)) => {
                let delay = backoff.next_delay();
                tracing::warn!(topic = %sub.topic, %error, ?delay, "transient failure applying event; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Outcome::Stopped,
                }
            }
        }
    }
}

/// Headers added to a dead-lettered message, next to its original headers.
pub fn dead_letter_headers(
    code: &str,
    reason: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Vec<(String, String)> {
    vec![
        ("dlq.reason".into(), code.into()),
        ("dlq.error".into(), reason.chars().take(1000).collect()),
        ("dlq.original.topic".into(), topic.into()),
        ("dlq.original.partition".into(), partition.to_string()),
        ("dlq.original.offset".into(), offset.to_string()),
        (
            "dlq.failed_at".into(),
            events::timestamp::format(&chrono::Utc::now()),
        ),
    ]
}

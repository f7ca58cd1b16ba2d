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

    /// Applies consecutive events of one topic, returning one result per
    /// event, in order. Override it to apply a batch in fewer database round
    /// trips. The default applies them one by one and stops at the first
    /// transient failure (the rest are reported transient too), because
    /// [`process_batch`] then retries the whole batch anyway.
    async fn handle_batch(&self, events: Vec<Envelope<P>>) -> Vec<Result<(), HandleError>> {
        let mut results = Vec::with_capacity(events.len());
        let mut failed: Option<String> = None;
        for event in events {
            if let Some(error) = &failed {
                results.push(Err(HandleError::Transient(error.clone())));
                continue;
            }
            let result = self.handle(event).await;
            if let Err(HandleError::Transient(error)) = &result {
                failed = Some(error.clone());
            }
            results.push(result);
        }
        results
    }
}

#[async_trait]
trait RawHandler: Send + Sync {
    async fn handle_raw_batch(&self, values: &[&[u8]]) -> Vec<Result<(), HandleError>>;
}

struct Decoding<P, H> {
    handler: Arc<H>,
    _payload: PhantomData<fn() -> P>,
}

#[async_trait]
impl<P: EventPayload, H: EventHandler<P>> RawHandler for Decoding<P, H> {
    async fn handle_raw_batch(&self, values: &[&[u8]]) -> Vec<Result<(), HandleError>> {
        let mut results: Vec<Option<Result<(), HandleError>>> = vec![None; values.len()];
        let mut decoded = Vec::new();
        let mut positions = Vec::new();
        for (i, value) in values.iter().enumerate() {
            if value.len() > MAX_EVENT_BYTES {
                results[i] = Some(Err(HandleError::permanent(
                    "too_large",
                    format!("{} bytes exceeds {MAX_EVENT_BYTES}", value.len()),
                )));
                continue;
            }
            match decode::<P>(value) {
                Ok(envelope) => {
                    decoded.push(envelope);
                    positions.push(i);
                }
                Err(e) => {
                    results[i] = Some(Err(HandleError::Permanent {
                        code: e.code(),
                        message: e.to_string(),
                    }))
                }
            }
        }
        if !decoded.is_empty() {
            let applied = self.handler.handle_batch(decoded).await;
            for (i, result) in positions.into_iter().zip(applied) {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(HandleError::Transient(
                        "handler returned too few results".into(),
                    ))
                })
            })
            .collect()
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

/// What became of one message that was processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is durable: the offset may move past it.
    Applied,
    /// Can never be applied: publish to the dead-letter topic, then move on.
    DeadLetter { code: &'static str, reason: String },
}

/// Maximum message size this consumer will try to apply; larger ones are
/// dead-lettered without parsing.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Most messages applied as one batch.
pub const MAX_BATCH: usize = 256;

/// Applies consecutive messages of one subscription and says what became of
/// each. If any fails transiently the whole batch is retried with backoff
/// (handlers are idempotent), so a later event for the same booking is never
/// applied — or dead-lettered — ahead of an earlier one that failed; only
/// when no failure is transient are the permanent ones dead-lettered.
/// Returns `None` when `stop` fires while retrying: nothing may be committed.
pub async fn process_batch(
    sub: &Subscription,
    values: &[&[u8]],
    stop: &CancellationToken,
) -> Option<Vec<Outcome>> {
    let mut backoff = Backoff::default();
    loop {
        let results = sub.handler.handle_raw_batch(values).await;
        let transient = results.iter().find_map(|r| match r {
            Err(HandleError::Transient(e)) => Some(e.clone()),
            _ => None,
        });
        match transient {
            None => {
                return Some(
                    results
                        .into_iter()
                        .map(|r| match r {
                            Ok(()) => Outcome::Applied,
                            Err(HandleError::Permanent { code, message }) => Outcome::DeadLetter {
                                code,
                                reason: message,
                            },
                            Err(HandleError::Transient(_)) => unreachable!("checked above"),
                        })
                        .collect(),
                )
            }
            Some(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(topic = %sub.topic, %error, ?delay, batch = values.len(), "transient failure applying events; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return None,
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

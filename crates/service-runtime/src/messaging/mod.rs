//! Publishing and consuming events, independent of the broker.
//!
//! Handlers implement [`EventHandler`] for one topic's payload type and are
//! registered as [`Subscription`]s. [`process`] is the one place that decides
//! what happens to a message: applied, retried with backoff while the failure
//! is transient (never skipped), or dead-lettered when it can never succeed.
//! Both the Kafka consumer and the in-memory bus drive it.

pub mod consumer_status;
pub mod kafka;
pub mod memory;

use std::{marker::PhantomData, sync::Arc};

use async_trait::async_trait;
use events::{decode, Envelope, EventPayload};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    backoff::Backoff,
    metrics::{Consumed, Metrics, UNKNOWN_EVENT_TYPE},
    store::{Chain, StoreError, StoreErrorKind},
    telemetry::{self, Consumed as ConsumedMessage},
};

/// The port the relay publishes through, implemented here by the Kafka and
/// in-memory adapters; it lives with the outbox.
pub use crate::outbox::EventPublisher;

/// What applying an event did, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event's effect is now durable.
    Changed,
    /// The event had been applied before (a redelivery, or a newer version
    /// is stored): nothing changed. Counted apart in
    /// `events_consumed_total{outcome="duplicate"}`.
    Duplicate,
}

/// One event's result from a handler.
pub type Handled = Result<Applied, HandleError>;

/// Why a handler did not apply an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Will never succeed (unknown property, inconsistent data): dead-letter it.
    #[error("{code}: {message}")]
    Permanent { code: &'static str, message: String },
    /// The store refused the effect for good (a document it cannot encode
    /// or decode, a write it rejects). Tried [`REFUSED_ATTEMPTS`] times in
    /// case the refusal was not final, then dead-lettered, so one bad event
    /// does not stall its partition.
    #[error("{code}: {message}")]
    Refused { code: &'static str, message: String },
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
    /// By the store error's kind; the message keeps its whole cause chain,
    /// which ends up in the log or the dead letter's `dlq.error`.
    fn from(e: StoreError) -> Self {
        let message = Chain(&e).to_string();
        match e.kind() {
            StoreErrorKind::Transient => HandleError::Transient(message),
            StoreErrorKind::Conflict => HandleError::permanent("conflict", message),
            StoreErrorKind::Permanent => HandleError::Refused {
                code: "store_refused",
                message,
            },
        }
    }
}

/// [`EventHandler::handle`] for a handler that applies batches: the event as
/// a batch of one, so that one event and many take the same path.
pub async fn handle_as_batch<P: EventPayload, H: EventHandler<P> + ?Sized>(
    handler: &H,
    event: Envelope<P>,
) -> Handled {
    handler
        .handle_batch(vec![event])
        .await
        .pop()
        .unwrap_or(Ok(Applied::Changed))
}

/// Applies one topic's events. Must be idempotent: the same event may arrive
/// more than once, and applying it twice must equal applying it once.
#[async_trait]
pub trait EventHandler<P: EventPayload>: Send + Sync + 'static {
    async fn handle(&self, event: Envelope<P>) -> Handled;

    /// Applies consecutive events of one topic, returning one result per
    /// event, in order. Override it to apply a batch in fewer database round
    /// trips. The default applies them one by one and stops at the first
    /// transient failure (the rest are reported transient too), because
    /// [`process_batch`] then retries the whole batch anyway.
    async fn handle_batch(&self, events: Vec<Envelope<P>>) -> Vec<Handled> {
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

/// A handler's result for one raw message, with the event type it was
/// decoded as ([`UNKNOWN_EVENT_TYPE`] when it could not be).
type RawHandled = (&'static str, Handled);

#[async_trait]
trait RawHandler: Send + Sync {
    async fn handle_raw_batch(&self, values: &[&[u8]]) -> Vec<RawHandled>;
}

struct Decoding<P, H> {
    handler: Arc<H>,
    _payload: PhantomData<fn() -> P>,
}

#[async_trait]
impl<P: EventPayload, H: EventHandler<P>> RawHandler for Decoding<P, H> {
    async fn handle_raw_batch(&self, values: &[&[u8]]) -> Vec<RawHandled> {
        let mut results: Vec<Option<Handled>> = vec![None; values.len()];
        let mut types = vec![UNKNOWN_EVENT_TYPE; values.len()];
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
                    types[i] = envelope.event_type();
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
            .zip(types)
            .map(|(r, event_type)| {
                let r = r.unwrap_or_else(|| {
                    Err(HandleError::Transient(
                        "handler returned too few results".into(),
                    ))
                });
                (event_type, r)
            })
            .collect()
    }
}

/// A topic and the handler for its events.
#[derive(Clone)]
pub struct Subscription {
    pub topic: String,
    handler: Arc<dyn RawHandler>,
    /// Where outcomes are counted (`events_consumed_total`); none in tests
    /// that do not look.
    metrics: Option<Arc<Metrics>>,
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
            metrics: None,
        }
    }

    /// The same subscription, counting its outcomes in `metrics`.
    pub fn observed_by(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, event_type: &'static str, outcome: Consumed) {
        if let Some(m) = &self.metrics {
            m.event_consumed(&self.topic, event_type, outcome);
        }
    }
}

/// What became of one message that was processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is durable (now or from before): the offset may move past it.
    Applied,
    /// Can never be applied: publish to the dead-letter topic, then move on.
    DeadLetter { code: &'static str, reason: String },
}

/// Maximum message size this consumer will try to apply; larger ones are
/// dead-lettered without parsing.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Most messages applied as one batch.
pub const MAX_BATCH: usize = 256;

/// How many times a batch is applied while the store refuses some of its
/// events for good ([`HandleError::Refused`]) before those are dead-lettered.
pub const REFUSED_ATTEMPTS: u32 = 3;

/// Applies consecutive messages of one subscription and says what became of
/// each. If any fails transiently the whole batch is retried with backoff
/// (handlers are idempotent), so a later event for the same booking is never
/// applied — or dead-lettered — ahead of an earlier one that failed; only
/// when no failure is transient are the permanent ones dead-lettered. Events
/// the store refuses are retried with the batch up to [`REFUSED_ATTEMPTS`]
/// times, then dead-lettered too.
/// Returns `None` when `stop` fires while retrying: nothing may be committed.
pub async fn process_batch(
    sub: &Subscription,
    values: &[&[u8]],
    stop: &CancellationToken,
) -> Option<Vec<Outcome>> {
    let mut backoff = Backoff::default();
    let mut refused_attempts = 0;
    loop {
        let results = sub.handler.handle_raw_batch(values).await;
        let transient = results.iter().find_map(|(_, r)| match r {
            Err(HandleError::Transient(e)) => Some(e.clone()),
            _ => None,
        });
        let refused = results.iter().find_map(|(_, r)| match r {
            Err(HandleError::Refused { message, .. }) => Some(message.clone()),
            _ => None,
        });
        let retry = match (transient, refused) {
            (Some(error), _) => Some(error),
            (None, Some(error)) => {
                refused_attempts += 1;
                (refused_attempts < REFUSED_ATTEMPTS).then_some(error)
            }
            (None, None) => None,
        };
        let Some(error) = retry else {
            return Some(
                results
                    .into_iter()
                    .map(|(event_type, r)| match r {
                        Ok(applied) => {
                            sub.count(
                                event_type,
                                match applied {
                                    Applied::Changed => Consumed::Applied,
                                    Applied::Duplicate => Consumed::Duplicate,
                                },
                            );
                            Outcome::Applied
                        }
                        Err(HandleError::Permanent { code, message }) => {
                            sub.count(event_type, Consumed::DeadLettered);
                            Outcome::DeadLetter {
                                code,
                                reason: message,
                            }
                        }
                        Err(HandleError::Refused { code, message }) => {
                            sub.count(event_type, Consumed::DeadLettered);
                            Outcome::DeadLetter {
                                code,
                                reason: format!("{message} (after {refused_attempts} attempts)"),
                            }
                        }
                        Err(HandleError::Transient(_)) => unreachable!("retried above"),
                    })
                    .collect(),
            );
        };
        for (event_type, _) in &results {
            sub.count(event_type, Consumed::Retried);
        }
        let delay = backoff.next_delay();
        tracing::warn!(topic = %sub.topic, %error, ?delay, batch = values.len(), "failure applying events; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return None,
        }
    }
}

/// [`process_batch`], each message in a span of its own when traces are on
/// ([`telemetry::consume_spans`]: a child of the publish that sent it, by
/// its `traceparent` header) with the outcome recorded on it. `messages`
/// is called only then, so a process without traces builds no carriers.
///
/// A batch of one message (the usual case unless a backlog is read) runs
/// inside its span, so the handler's log lines and the events it writes
/// belong to that trace; a larger batch is applied together, outside any
/// one message's span, while each span still covers it.
pub async fn process_traced<'a>(
    sub: &Subscription,
    values: &[&[u8]],
    messages: impl FnOnce() -> Vec<ConsumedMessage<'a>>,
    stop: &CancellationToken,
) -> Option<Vec<Outcome>> {
    if !telemetry::traces_enabled() {
        return process_batch(sub, values, stop).await;
    }
    let spans = telemetry::consume_spans(&sub.topic, &messages());
    let outcomes = match spans.as_slice() {
        [only] => {
            process_batch(sub, values, stop)
                .instrument(only.clone())
                .await
        }
        _ => process_batch(sub, values, stop).await,
    };
    for (span, outcome) in spans.iter().zip(outcomes.iter().flatten()) {
        match outcome {
            Outcome::Applied => {
                span.record("outcome", "applied");
            }
            Outcome::DeadLetter { code, reason } => {
                span.record("outcome", "dead_lettered");
                span.record("otel.status_code", "ERROR");
                span.record("error", format!("{code}: {reason}"));
            }
        }
    }
    outcomes
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::Utc;
    use events::{BookingCancellationRequested, BookingRequestEvent};

    use super::*;

    /// Refuses the event of booking `refused` (as the store would refuse a
    /// document it cannot encode) and applies the others; counts attempts.
    struct RefusesOne {
        refused: &'static str,
        attempts: AtomicU32,
    }

    #[async_trait]
    impl EventHandler<BookingRequestEvent> for RefusesOne {
        async fn handle(&self, e: Envelope<BookingRequestEvent>) -> Handled {
            let BookingRequestEvent::CancellationRequested(c) = &e.payload else {
                return Ok(Applied::Changed);
            };
            if c.booking_id != self.refused {
                return Ok(Applied::Changed);
            }
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let cause = bson::to_document(&f64::NAN).unwrap_err();
            Err(StoreError::permanent_from("cannot encode a document", cause).into())
        }
    }

    fn cancellation(booking_id: &str) -> Vec<u8> {
        Envelope::new(
            "test",
            BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
                booking_id: booking_id.into(),
                traveler_id: "t".into(),
                reason: None,
                requested_at: Utc::now(),
            }),
        )
        .to_json()
        .into_bytes()
    }

    #[tokio::test]
    async fn an_event_the_store_refuses_is_dead_lettered_after_bounded_attempts() {
        let handler = Arc::new(RefusesOne {
            refused: "bad",
            attempts: AtomicU32::new(0),
        });
        let sub = Subscription::new("requests", handler.clone());
        let (good, bad) = (cancellation("good"), cancellation("bad"));
        let outcomes = process_batch(&sub, &[&good, &bad], &CancellationToken::new())
            .await
            .expect("not stopped");
        assert_eq!(handler.attempts.load(Ordering::SeqCst), REFUSED_ATTEMPTS);
        assert_eq!(outcomes[0], Outcome::Applied);
        let Outcome::DeadLetter { code, reason } = &outcomes[1] else {
            panic!("the refused event is dead-lettered: {outcomes:?}");
        };
        assert_eq!(*code, "store_refused");
        assert!(reason.contains("cannot encode a document: "), "{reason}");
        assert!(reason.ends_with("(after 3 attempts)"), "{reason}");
    }

    #[test]
    fn store_errors_become_handle_errors_by_kind() {
        assert!(matches!(
            HandleError::from(StoreError::unavailable("down")),
            HandleError::Transient(_)
        ));
        assert!(matches!(
            HandleError::from(StoreError::Duplicate("booking".into())),
            HandleError::Permanent {
                code: "conflict",
                ..
            }
        ));
    }
}

//! An in-process message log standing in for Kafka in the embedded mode and
//! in fast tests: topics are append-only logs, each consumer keeps its own
//! offsets, and poison messages go to `<topic>.dlq` like on Kafka.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{dead_letter_headers, process_traced, Outcome, Subscription, MAX_BATCH};
use crate::outbox::{EventPublisher, OutboxMessage};

/// One message in an in-memory topic.
#[derive(Debug, Clone, PartialEq)]
pub struct BusMessage {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// The in-memory broker. Share it behind an `Arc` between publishers and consumers.
#[derive(Default)]
pub struct InMemoryBus {
    topics: Mutex<HashMap<String, Vec<BusMessage>>>,
    appended: Notify,
}

impl InMemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a message as a producer would (tests use it to inject poison).
    pub fn append(&self, topic: &str, message: BusMessage) {
        self.topics
            .lock()
            .expect("bus lock")
            .entry(topic.to_string())
            .or_default()
            .push(message);
        self.appended.notify_waiters();
    }

    /// Everything ever appended to `topic`, oldest first.
    pub fn messages(&self, topic: &str) -> Vec<BusMessage> {
        self.topics
            .lock()
            .expect("bus lock")
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Up to [`MAX_BATCH`] messages of `topic` from `offset` on.
    fn batch(&self, topic: &str, offset: usize) -> Vec<BusMessage> {
        self.topics
            .lock()
            .expect("bus lock")
            .get(topic)
            .map(|log| log.iter().skip(offset).take(MAX_BATCH).cloned().collect())
            .unwrap_or_default()
    }

    /// Consumes `subscriptions` from the start of each topic until `stop`,
    /// with the same apply / retry / dead-letter rules as the Kafka consumer.
    pub async fn run_consumer(&self, subscriptions: Vec<Subscription>, stop: CancellationToken) {
        let mut offsets = vec![0usize; subscriptions.len()];
        loop {
            let appended = self.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();

            let mut progressed = false;
            for (i, sub) in subscriptions.iter().enumerate() {
                loop {
                    let batch = self.batch(&sub.topic, offsets[i]);
                    if batch.is_empty() {
                        break;
                    }
                    let values: Vec<&[u8]> = batch.iter().map(|m| m.value.as_slice()).collect();
                    let traced = || {
                        batch
                            .iter()
                            .map(|m| crate::telemetry::Consumed {
                                key: std::str::from_utf8(&m.key).unwrap_or_default(),
                                headers: m.headers.clone(),
                            })
                            .collect()
                    };
                    let Some(outcomes) = process_traced(sub, &values, traced, &stop).await else {
                        return;
                    };
                    for (k, (message, outcome)) in batch.iter().zip(outcomes).enumerate() {
                        if let Outcome::DeadLetter { code, reason } = outcome {
                            let mut headers = message.headers.clone();
                            headers.extend(dead_letter_headers(
                                code,
                                &reason,
                                &sub.topic,
                                0,
                                (offsets[i] + k) as i64,
                            ));
                            self.append(
                                &events::topics::dead_letter(&sub.topic),
                                BusMessage {
                                    headers,
                                    ..message.clone()
                                },
                            );
                        }
                    }
                    offsets[i] += batch.len();
                    progressed = true;
                }
            }
            if progressed {
                continue;
            }
            tokio::select! {
                _ = &mut appended => {}
                _ = stop.cancelled() => return,
                // A safety net against a missed wake-up; costs nothing when idle.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

#[async_trait]
impl EventPublisher for InMemoryBus {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        batch
            .iter()
            .map(|m| {
                self.append(
                    &m.topic,
                    BusMessage {
                        key: m.key.as_bytes().to_vec(),
                        value: m.payload.as_bytes().to_vec(),
                        headers: m.headers.clone(),
                    },
                );
                Ok(())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use chrono::Utc;
    use events::{BookingCancellationRequested, BookingRequestEvent, Envelope};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::messaging::{Applied, EventHandler, Handled, MAX_EVENT_BYTES};

    #[derive(Default)]
    struct Seen(Mutex<Vec<events::EventId>>);

    #[async_trait]
    impl EventHandler<BookingRequestEvent> for Seen {
        async fn handle(&self, e: Envelope<BookingRequestEvent>) -> Handled {
            self.0.lock().unwrap().push(e.event_id);
            Ok(Applied::Changed)
        }
    }

    fn message(value: Vec<u8>) -> BusMessage {
        BusMessage {
            key: b"k".to_vec(),
            value,
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn poison_and_oversized_messages_are_dead_lettered_and_consumption_continues() {
        let bus = Arc::new(InMemoryBus::new());
        let good = Envelope::new(
            "test",
            BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
                booking_id: "b".into(),
                traveler_id: "t".into(),
                reason: None,
                requested_at: Utc::now(),
            }),
        );
        bus.append("requests", message(b"{oops".to_vec()));
        bus.append("requests", message(vec![b' '; MAX_EVENT_BYTES + 1]));
        bus.append("requests", message(good.to_json().into_bytes()));

        let seen = Arc::new(Seen::default());
        let stop = CancellationToken::new();
        let consumer = {
            let (bus, seen, stop) = (bus.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                bus.run_consumer(vec![Subscription::new("requests", seen)], stop)
                    .await
            })
        };
        for _ in 0..100 {
            if !seen.0.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        consumer.await.unwrap();

        assert_eq!(*seen.0.lock().unwrap(), vec![good.event_id]);
        let dead = bus.messages("requests.dlq");
        let reason = |m: &BusMessage| {
            m.headers
                .iter()
                .find(|(k, _)| k == "dlq.reason")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(dead.len(), 2);
        assert_eq!(reason(&dead[0]).as_deref(), Some("malformed_envelope"));
        assert_eq!(reason(&dead[1]).as_deref(), Some("too_large"));
        assert_eq!(dead[0].value, b"{oops", "original value kept");
    }
}

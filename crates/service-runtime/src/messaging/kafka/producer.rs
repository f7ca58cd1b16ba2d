//! [`KafkaPublisher`], the service's one idempotent producer (the relay's
//! and dead-lettering's), and [`KafkaReadiness`], which asks the broker
//! through it for metadata.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::{
    config::ClientConfig,
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    util::Timeout,
};

use crate::{
    config::KafkaConfig,
    http::ReadinessCheck,
    outbox::{EventPublisher, OutboxMessage},
};

/// Largest message the producer sends: room for dead-lettering a poison
/// message of about 1 MB with its headers.
const MAX_MESSAGE_BYTES: &str = "4000000";

/// The idempotent producer: `enable.idempotence=true`, `acks=all`, so retries
/// inside the client never duplicate or reorder a partition's messages.
///
/// Within `KAFKA_DELIVERY_TIMEOUT_MS` (default 60 s) the producer retries a
/// send with the same producer id and sequence number, so a broker that
/// restarts meanwhile writes it once. When a delivery times out (the broker
/// was away for longer), librdkafka fails the message back to its caller
/// (the outbox relay keeps it and retries its batch later, in key order)
/// and bumps the producer epoch itself before it sends again (KIP-360), so
/// the session's sequence numbers stay consistent with the broker's; see
/// docs/reliability.md ("Workarounds for the former test broker").
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    /// How long a send may wait for room in the producer's queue.
    enqueue_timeout: Duration,
}

impl KafkaPublisher {
    /// The service's one producer, shared by the relay and dead-lettering.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
            .set("message.max.bytes", MAX_MESSAGE_BYTES)
            .create()?;
        Ok(Self {
            producer,
            enqueue_timeout: Duration::from_millis(u64::from(config.delivery_timeout_ms)),
        })
    }

    /// Sends raw bytes (dead letters carry whatever arrived, even non-UTF-8).
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), String> {
        let mut owned = OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record = FutureRecord::to(topic).payload(value).headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer
            .send(record, Timeout::After(self.enqueue_timeout))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        // All sends are enqueued before any is awaited, in batch order, so one
        // key's messages keep their order and the batch shares round trips.
        let producer = &self.producer;
        let sends = batch.iter().map(|m| {
            let mut headers = OwnedHeaders::new_with_capacity(m.headers.len());
            for (k, v) in &m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let record = FutureRecord::to(&m.topic)
                .key(&m.key)
                .payload(&m.payload)
                .headers(headers);
            producer.send(record, Timeout::After(self.enqueue_timeout))
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|(e, _)| e.to_string()))
            .collect()
    }

    async fn flush(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout))).await;
    }
}

/// Readiness: the broker answers a metadata request.
pub struct KafkaReadiness {
    publisher: KafkaPublisher,
}

impl KafkaReadiness {
    pub fn new(publisher: &KafkaPublisher) -> Self {
        Self {
            publisher: publisher.clone(),
        }
    }
}

#[async_trait]
impl ReadinessCheck for KafkaReadiness {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn check(&self) -> Result<(), String> {
        let producer = self.publisher.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_millis(1500))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

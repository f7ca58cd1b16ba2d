//! The Kafka adapter: an idempotent producer, a consumer that stores offsets
//! only after the effect is durable, topic creation, and a readiness check.
//!
//! Laid out by part: `producer` ([`KafkaPublisher`], [`KafkaReadiness`]),
//! `consumer` ([`run_consumer`]), `admin` ([`ensure_topics`]) and
//! `dead_letters` (where a refused message goes).

mod admin;
mod consumer;
mod dead_letters;
mod producer;

pub use admin::{ensure_topics, TopicSpec};
pub use consumer::run_consumer;
pub use producer::{KafkaPublisher, KafkaReadiness};

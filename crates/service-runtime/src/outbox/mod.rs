//! The transactional outbox: events are written in the same atomic database
//! operation as the state change they describe, and a relay publishes them
//! afterwards, marking them sent only after the broker confirmed delivery.
//!
//! So a request that got its 2xx is never lost when Kafka is down (the event
//! waits in the database), and nothing is published for a write that did not
//! commit (the event is part of that write).
//!
//! Laid out by part: `message` (the event and the [`OutboxStore`] port),
//! `signal` (a write waking the relay and handing it its events), `relay`
//! ([`run_relay`]), and the adapters `memory` ([`InMemoryOutbox`]) and
//! `mongo` ([`MongoOutbox`], and [`OutboxWrites`], the one way a MongoDB
//! store writes an aggregate with its events).

mod memory;
mod message;
mod mongo;
mod relay;
mod signal;

pub use memory::InMemoryOutbox;
pub use message::{Backlog, EventPublisher, OutboxMessage, OutboxStore};
pub use mongo::{
    outbox_entry, outbox_ids, outbox_report, MongoOutbox, OutboxReport, OutboxWriteError,
    OutboxWrites, RelayLease, OUTBOX_FIELD,
};
pub use relay::{publish_in_order, run_relay, RelayConfig};
pub use signal::{Committed, OutboxSignal, MAX_HANDOVER};

/// Messages the unit tests of the outbox modules publish.
#[cfg(test)]
mod test_messages {
    use chrono::Utc;

    use super::OutboxMessage;

    pub(super) fn message(id: usize) -> OutboxMessage {
        OutboxMessage {
            event_id: format!("e{id}").into(),
            topic: "t".into(),
            key: "k".into(),
            payload: "{}".into(),
            headers: vec![],
            created_at: Utc::now(),
        }
    }

    pub(super) fn message_named(id: &str) -> OutboxMessage {
        OutboxMessage {
            event_id: id.into(),
            ..message(0)
        }
    }
}

//! The AsyncAPI 3.0 description of every topic: who sends and receives it,
//! its key, headers and the payload of every event type.
//!
//! It is built from the same [`event_schemas`] that `docs/events/` holds (a
//! payload is a `$ref` to its schema file there), so the description cannot
//! name an event the code does not write. `docs/asyncapi.yaml` is this
//! document; `events/tests/asyncapi.rs` fails when the file drifts from it
//! and validates it against the AsyncAPI 3.0.0 JSON Schema.

use serde_json::{json, Map, Value};

use crate::{
    envelope::SPEC_VERSION,
    schemas::{event_schemas, EventSchema},
    topics,
};

/// Where `docs/asyncapi.yaml` finds the event schemas, relative to itself.
const SCHEMAS_DIR: &str = "events";

/// One topic of the platform and the services on either side of it.
struct Topic {
    /// Default topic name (see [`topics`]).
    name: &'static str,
    /// Channel id in the document.
    id: &'static str,
    sender: &'static str,
    receiver: &'static str,
    key: &'static str,
    compacted: bool,
    summary: &'static str,
}

const TOPICS: [Topic; 3] = [
    Topic {
        name: topics::BOOKING_REQUESTS,
        id: "bookingRequests",
        sender: "traveler-service",
        receiver: "owner-service",
        key: "The booking id: every event of one booking goes to one partition, in order.",
        compacted: false,
        summary: "Booking requests and travelers' cancellations, traveler-service to owner-service.",
    },
    Topic {
        name: topics::BOOKING_UPDATES,
        id: "bookingUpdates",
        sender: "owner-service",
        receiver: "traveler-service",
        key: "The booking id: every event of one booking goes to one partition, in order.",
        compacted: false,
        summary: "Owners' decisions on bookings (the authoritative status), owner-service to traveler-service.",
    },
    Topic {
        name: topics::PROPERTY_LISTINGS,
        id: "propertyListings",
        sender: "owner-service",
        receiver: "traveler-service",
        key: "The property id: compaction keeps the latest event of each property, which is the catalog.",
        compacted: true,
        summary: "The property catalog, owner-service to traveler-service; compacted.",
    },
];

/// A component id for an event type, e.g. `booking.requested` → `bookingRequested`.
fn message_id(event_type: &str) -> String {
    let mut id = String::new();
    let mut upper = false;
    for c in event_type.chars() {
        if c == '.' || c == '_' {
            upper = true;
        } else if upper {
            id.extend(c.to_uppercase());
            upper = false;
        } else {
            id.push(c);
        }
    }
    id
}

/// The CloudEvents Kafka-binding headers every event carries
/// ([`crate::cloud_event_headers`]), and the W3C Trace Context headers the
/// services add when they export traces (service-runtime's telemetry).
fn event_headers() -> Value {
    json!({
        "type": "object",
        "description": "CloudEvents 1.0 Kafka protocol binding, binary mode: the envelope's fields as headers, so tools can route and inspect messages without parsing the value. When the producing service exports traces, W3C Trace Context headers name the span that published the message.",
        "required": ["ce_id", "ce_type", "ce_time", "ce_source", "ce_specversion", "content-type"],
        "properties": {
            "ce_id": {"type": "string", "format": "uuid", "description": "The event id (UUIDv7), as `event_id` in the value; consumers deduplicate by it."},
            "ce_type": {"type": "string", "description": "The event type, as `event_type` in the value."},
            "ce_time": {"type": "string", "format": "date-time", "description": "When the event happened (RFC 3339, milliseconds, UTC)."},
            "ce_source": {"type": "string", "description": "The service that wrote the event."},
            "ce_specversion": {"type": "string", "const": SPEC_VERSION},
            "content-type": {"type": "string", "const": "application/json"},
            "traceparent": {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", "description": "W3C Trace Context: the trace and the publishing span (a child of the request that wrote the event). Present only when the producer exports traces; the consumer's span continues this trace."},
            "tracestate": {"type": "string", "description": "W3C Trace Context vendor state, passed along with `traceparent` when the writing request had any."}
        }
    })
}

/// The headers a dead letter carries beside its original headers.
fn dead_letter_headers() -> Value {
    json!({
        "type": "object",
        "description": "The original message's headers, plus why it was dead-lettered.",
        "required": ["dlq.reason", "dlq.error", "dlq.original.topic", "dlq.original.partition", "dlq.original.offset", "dlq.failed_at"],
        "properties": {
            "dlq.reason": {"type": "string", "description": "A stable code: malformed_envelope, unsupported_schema_version, invalid_data, unknown_event_type, too_large, unknown_booking, unknown_property, conflict, store_refused."},
            "dlq.error": {"type": "string", "description": "The error with its causes, at most 1000 characters."},
            "dlq.original.topic": {"type": "string"},
            "dlq.original.partition": {"type": "string", "description": "A decimal integer."},
            "dlq.original.offset": {"type": "string", "description": "A decimal integer."},
            "dlq.failed_at": {"type": "string", "format": "date-time"},
            "dlq.replayed_from": {"type": "string", "description": "Set on a message `bookingctl dlq replay` sent back to its topic."},
            "dlq.replayed_at": {"type": "string", "format": "date-time"}
        }
    })
}

/// The Kafka binding of the topic `name`: deleted or compacted.
fn kafka_channel_binding(name: &str, compacted: bool) -> Value {
    let policy = if compacted { "compact" } else { "delete" };
    json!({"kafka": {"topic": name, "topicConfiguration": {"cleanup.policy": [policy]}, "bindingVersion": "0.5.0"}})
}

fn message(t: &Topic, s: &EventSchema) -> Value {
    json!({
        "name": s.event_type,
        "title": s.event_type,
        "summary": s.schema.get("description").and_then(Value::as_str).unwrap_or(t.summary),
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/eventHeaders"},
        "payload": {
            "schemaFormat": "application/schema+json;version=draft-07",
            "schema": {"$ref": format!("{SCHEMAS_DIR}/{}", s.relative_path())}
        },
        "bindings": {"kafka": {
            "key": {"type": "string", "description": t.key},
            "bindingVersion": "0.5.0"
        }}
    })
}

/// A Kafka channel of the document: the topic `address` (its own title),
/// what flows on it and how the topic is cleaned up. The topics and their
/// dead-letter topics are described alike.
fn channel(address: &str, summary: &str, messages: Value, compacted: bool) -> Value {
    json!({
        "address": address,
        "title": address,
        "summary": summary,
        "messages": messages,
        "bindings": kafka_channel_binding(address, compacted),
    })
}

/// The AsyncAPI 3.0.0 document, as a JSON value.
pub fn asyncapi_document() -> Value {
    let schemas = event_schemas();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for t in &TOPICS {
        let mut channel_messages = Map::new();
        let mut refs = Vec::new();
        for s in schemas.iter().filter(|s| s.topic == t.name) {
            let id = message_id(&s.event_type);
            channel_messages.insert(
                id.clone(),
                json!({"$ref": format!("#/components/messages/{id}")}),
            );
            refs.push(json!({"$ref": format!("#/channels/{}/messages/{id}", t.id)}));
            messages.insert(id, message(t, s));
        }
        channels.insert(
            t.id.into(),
            channel(t.name, t.summary, channel_messages.into(), t.compacted),
        );
        let dlq = topics::dead_letter(t.name);
        let dlq_id = format!("{}DeadLetters", t.id);
        channels.insert(
            dlq_id.clone(),
            channel(
                &dlq,
                &format!("Messages of {} that {} can never apply, byte for byte, with the reason in headers.", t.name, t.receiver),
                json!({"deadLetter": {"$ref": "#/components/messages/deadLetter"}}),
                false,
            ),
        );
        let channel_ref = json!({"$ref": format!("#/channels/{}", t.id)});
        // Both ends of the topic, alike but for who they are.
        for (end, action, title, summary) in [
            (
                "Send",
                "send",
                format!("{} publishes", t.sender),
                format!("{} publishes through its transactional outbox, with an idempotent producer (acks=all): at least once, in write order per key.", t.sender),
            ),
            (
                "Receive",
                "receive",
                format!("{} consumes", t.receiver),
                format!("{} applies each event idempotently (by event id) and commits its offset only after the effect is stored; an event it can never apply goes to {dlq}.", t.receiver),
            ),
        ] {
            operations.insert(
                format!("{}{end}", t.id),
                json!({
                    "action": action,
                    "channel": channel_ref,
                    "title": title,
                    "summary": summary,
                    "messages": refs,
                }),
            );
        }
        operations.insert(
            format!("{dlq_id}Send"),
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{dlq_id}")},
                "title": format!("{} dead-letters", t.receiver),
                "messages": [{"$ref": format!("#/channels/{dlq_id}/messages/deadLetter")}],
            }),
        );
    }
    messages.insert(
        "deadLetter".into(),
        json!({
            "name": "dead letter",
            "title": "dead letter",
            "summary": "The original key and value, unchanged; `bookingctl dlq list` shows them and `bookingctl dlq replay` sends them back.",
            "headers": {"$ref": "#/components/schemas/deadLetterHeaders"},
            "payload": {"description": "The original value, byte for byte (it may not be JSON)."}
        }),
    );
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Booking platform events",
            "version": crate::SCHEMA_VERSION.to_string(),
            "description": "The topics traveler-service and owner-service talk through. Every value is a JSON event envelope (`event_id`, `event_type`, `schema_version`, `occurred_at`, `source`, `payload`); the payload schemas are the JSON Schemas (draft 2020-12, as their `$schema` says) in docs/events/. Generated from the `events` crate: `UPDATE_ASYNCAPI=1 cargo test -p events --test asyncapi`.",
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "The brokers of KAFKA_BROKERS (docker-compose: kafka:9092). Topic names are the defaults; KAFKA_REQUEST_TOPIC, KAFKA_RESPONSE_TOPIC and KAFKA_PROPERTY_TOPIC rename them."
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {
                "eventHeaders": event_headers(),
                "deadLetterHeaders": dead_letter_headers()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_camel_case_event_types() {
        assert_eq!(message_id("booking.requested"), "bookingRequested");
        assert_eq!(
            message_id("booking.cancellation_requested"),
            "bookingCancellationRequested"
        );
    }

    #[test]
    fn every_event_type_has_a_message_on_its_topic() {
        let doc = asyncapi_document();
        for s in event_schemas() {
            let id = message_id(&s.event_type);
            assert_eq!(doc["components"]["messages"][&id]["name"], s.event_type);
            let channel = TOPICS.iter().find(|t| t.name == s.topic).unwrap().id;
            assert!(doc["channels"][channel]["messages"].get(&id).is_some());
        }
    }
}

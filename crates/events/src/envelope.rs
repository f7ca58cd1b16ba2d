use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::EventId;

/// Version of the envelope and payload schemas produced by this build.
/// A consumer refuses (dead-letters) any other version instead of guessing.
pub const SCHEMA_VERSION: u32 = 1;
/// CloudEvents specification version written to the `ce_specversion` header.
pub const SPEC_VERSION: &str = "1.0";
/// Media type of every message value.
pub const CONTENT_TYPE: &str = "application/json";

/// A payload that can travel in an [`Envelope`]: each topic has one enum of
/// payloads, adjacently tagged by `event_type` with its body under `data`.
pub trait EventPayload: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The CloudEvents type, e.g. `booking.requested`.
    fn event_type(&self) -> &'static str;
    /// The Kafka key: the aggregate id, so one aggregate's events stay in order.
    fn key(&self) -> &str;
}

/// The versioned wrapper around every event.
///
/// `event_id` is unique per event and is what consumers deduplicate on when a
/// message is delivered more than once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope<P> {
    pub event_id: EventId,
    pub schema_version: u32,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub occurred_at: DateTime<Utc>,
    /// Which service produced the event (CloudEvents `source`).
    pub source: String,
    #[serde(flatten)]
    pub payload: P,
}

impl<P: EventPayload> Envelope<P> {
    /// Wraps `payload` with a fresh, time-ordered event id.
    pub fn new(source: &str, payload: P) -> Self {
        Self {
            event_id: EventId::generate(),
            schema_version: SCHEMA_VERSION,
            // Millisecond precision: exactly what the wire format carries.
            occurred_at: crate::timestamp::now(),
            source: source.to_string(),
            payload,
        }
    }

    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }

    pub fn key(&self) -> &str {
        self.payload.key()
    }

    /// The JSON value written to Kafka.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("event payloads always serialise")
    }
}

/// The CloudEvents Kafka-binding headers for an envelope, so tools can route
/// and inspect messages without parsing the value.
pub fn cloud_event_headers<P: EventPayload>(envelope: &Envelope<P>) -> Vec<(String, String)> {
    vec![
        ("ce_id".into(), envelope.event_id.to_string()),
        ("ce_type".into(), envelope.event_type().into()),
        (
            "ce_time".into(),
            envelope
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
        ("ce_source".into(), envelope.source.clone()),
        ("ce_specversion".into(), SPEC_VERSION.into()),
        ("content-type".into(), CONTENT_TYPE.into()),
    ]
}

/// Why a message could not be decoded. Every variant is permanent: retrying the
/// same bytes gives the same answer, so the consumer dead-letters the message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("value is not a JSON event envelope: {0}")]
    Malformed(String),
    #[error("unsupported schema_version {found} (this build reads {SCHEMA_VERSION})")]
    UnsupportedSchemaVersion { found: u64 },
    #[error("unknown event_type {0:?}")]
    UnknownEventType(String),
    #[error("invalid data for {event_type}: {reason}")]
    InvalidData { event_type: String, reason: String },
}

impl DecodeError {
    /// A stable, machine-readable reason for the dead-letter header.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Malformed(_) => "malformed_envelope",
            DecodeError::UnsupportedSchemaVersion { .. } => "unsupported_schema_version",
            DecodeError::UnknownEventType(_) => "unknown_event_type",
            DecodeError::InvalidData { .. } => "invalid_data",
        }
    }
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    event_id: EventId,
    schema_version: u64,
    occurred_at: DateTime<Utc>,
    source: String,
    event_type: String,
    /// Kept as text: it is decoded once, as `P`, after the version check.
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// Decodes a message value, checking the schema version before the payload so
/// that a future version is reported as such rather than as "invalid data".
pub fn decode<P: EventPayload>(bytes: &[u8]) -> Result<Envelope<P>, DecodeError> {
    let raw: RawEnvelope =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if raw.schema_version != u64::from(SCHEMA_VERSION) {
        return Err(DecodeError::UnsupportedSchemaVersion {
            found: raw.schema_version,
        });
    }
    // The payload types are tagged `{"event_type", "data"}`: hand them that
    // shape as text, which decodes straight into `P` (no intermediate tree).
    let event_type = serde_json::to_string(&raw.event_type)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let tagged = format!(r#"{{"event_type":{event_type},"data":{}}}"#, raw.data.get());
    let payload: P = serde_json::from_str(&tagged).map_err(|e| {
        if e.to_string().starts_with("unknown variant") {
            DecodeError::UnknownEventType(raw.event_type.clone())
        } else {
            DecodeError::InvalidData {
                event_type: raw.event_type.clone(),
                reason: e.to_string(),
            }
        }
    })?;
    Ok(Envelope {
        event_id: raw.event_id,
        schema_version: SCHEMA_VERSION,
        occurred_at: raw.occurred_at,
        source: raw.source,
        payload,
    })
}

//! Message schemas shared by traveler-service and owner-service.
//!
//! Both services compile against this crate, so a schema change breaks the build
//! instead of production. Every message on Kafka is an [`Envelope`] serialised as
//! JSON; its payload is one of the per-topic enums below, tagged by `event_type`.
//! The Kafka headers follow the CloudEvents Kafka binding (see [`cloud_event_headers`]).
//!
//! [`schemas`] publishes the wire format as JSON Schemas (committed under
//! `docs/events/`) and holds the compatibility check that stands in for a
//! schema registry.

pub mod asyncapi;
mod booking;
mod envelope;
mod ids;
mod property;
pub mod schemas;
mod stay;
pub mod timestamp;
pub mod topics;

pub use booking::{
    Actor, ActorRole, BookingCancellationRequested, BookingRequestEvent, BookingRequested,
    BookingStatus, BookingStatusChanged, BookingUpdateEvent,
};
pub use envelope::{
    cloud_event_headers, decode, DecodeError, Envelope, EventPayload, CONTENT_TYPE, SCHEMA_VERSION,
    SPEC_VERSION,
};
pub use ids::{BookingId, EventId, PropertyId, UserId};
pub use property::{PropertyDelisted, PropertyDetails, PropertyEvent, PropertySnapshot};
pub use stay::Stay;

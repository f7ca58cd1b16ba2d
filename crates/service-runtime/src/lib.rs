//! Runtime plumbing shared by traveler-service and owner-service.
//!
//! Everything here is the same for both services, so it is written once:
//! configuration, the HTTP error shape and extractors, authentication and the
//! identity endpoints, notifications, the outbox relay, a TTL cache, the Kafka and
//! in-memory messaging adapters, MongoDB helpers, health, metrics, shutdown, and the
//! assembly of a service from what is particular to it ([`assembly`]).

pub mod assembly;
pub mod auth;
pub mod backoff;
pub mod cache;
pub mod config;
pub mod http;
pub mod identity;
pub mod memory;
pub mod messaging;
pub mod metrics;
pub mod mongo;
pub mod notifications;
pub mod openapi;
pub mod outbox;
pub mod paging;
pub mod runner;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod supervision;
pub mod telemetry;
pub mod validation;
pub mod web;

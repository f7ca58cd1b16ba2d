//! owner-service: owners sign up, list properties, receive booking requests
//! from `booking-requests`, and approve / reject / cancel them; each decision
//! is saved with its `booking-updates` event in one atomic write (outbox).
//!
//! Where things are:
//! - `routes/properties.rs`, `routes/bookings.rs` — the HTTP endpoints
//!   (approve a booking: `routes/bookings.rs`, `approve`).
//! - `decisions.rs` — the one path every status change takes.
//! - `domain/` — properties, bookings, the overlap rule.
//! - `store/` — the storage port and its MongoDB and in-memory adapters.
//! - `consumer.rs` — applying `booking-requests`.
//! - `property_cache.rs` — the properties the consumer checks requests against.
//! - `wiring.rs` — what the shared assembly (`service_runtime::assembly`)
//!   needs to know of this service: name, role, store, routes, subscriptions.

pub mod consumer;
pub mod decisions;
pub mod domain;
pub mod property_cache;
pub mod routes;
pub mod store;
pub mod wiring;

use std::sync::Arc;

use service_runtime::config::ServiceDefaults;

use crate::{property_cache::PropertyCache, store::OwnerStore};

/// What every handler can reach: identity, notifications, topics, metrics,
/// and (through `Deref`) the store and the property cache.
pub type AppState = service_runtime::assembly::AppState<OwnerService>;

/// owner-service's own part of the state its handlers reach (the rest,
/// shared with traveler-service, is in [`AppState`]); `wiring.rs` tells the
/// assembly how to build it.
pub struct OwnerService {
    /// Properties and the authoritative bookings.
    pub store: Arc<dyn OwnerStore>,
    /// Dropped entries on every property change this process makes.
    pub property_cache: Arc<PropertyCache>,
}

/// Service name, port and database when the environment does not say otherwise.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "owner-service",
    port: 5002,
    database: "owner",
};

/// The CloudEvents `source` of every event this service publishes.
pub const SOURCE: &str = DEFAULTS.name;
